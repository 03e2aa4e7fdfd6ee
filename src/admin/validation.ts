import type { Context, MiddlewareHandler } from "hono";
import { validator } from "hono-openapi";
import type { ValidationTargets } from "hono/types";
import type { z } from "zod";
import type { FieldError } from "../config/schemas";
import type { AppEnv } from "../env";
import { type ErrorCode, errorResponse } from "../lib/errors";

/**
 * Request validation of the admin API, Hono's validator pattern: one zod schema per request part
 * both validates (`c.req.valid(...)` in the handler) and documents the route (hono-openapi reads
 * it for /admin/openapi.json). A refusal is the contract's 400 with field-level messages.
 */

/** A Standard Schema validation issue (what zod reports through the validator). */
interface Issue {
  message: string;
  path?: ReadonlyArray<PropertyKey | { key: PropertyKey }>;
}

/** Field errors of a validation, paths dotted. */
export function issuesToFields(issues: readonly Issue[]): FieldError[] {
  return issues.map((i) => ({
    path: (i.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? String(p.key) : String(p))).join(".") || "(document)",
    message: i.message,
  }));
}

/** Validates one request part against `schema`; refusals answer 400 `{ error: code, message, fields }`. */
export function valid<Target extends keyof ValidationTargets, S extends z.ZodType>(target: Target, schema: S, code: ErrorCode = "bad_request") {
  const what = target === "json" ? "request body" : target === "query" ? "query" : target === "param" ? "path" : target;
  return validator(target, schema, (result, c: Context) => {
    if (!result.success) return errorResponse(c, 400, code, `Invalid ${what}.`, { fields: issuesToFields(result.error) });
  });
}

/**
 * Reads the JSON body once, before the validator: an empty body reads as `{}` (the bodies of
 * replay calls are optional), malformed JSON is refused with the contract's 400, and a body sent
 * without a JSON content type is refused rather than ignored.
 */
export function jsonBody(code: ErrorCode = "bad_request"): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const text = await c.req.text();
    if (text.trim() !== "" && !/^application\/([\w.-]+\+)?json\b/i.test(c.req.header("content-type") ?? ""))
      return errorResponse(c, 400, code, "Send the body as JSON (Content-Type: application/json).", { fields: [{ path: "(body)", message: "is not JSON" }] });
    let value: unknown = {};
    if (text.trim() !== "") {
      try {
        value = JSON.parse(text);
      } catch {
        return errorResponse(c, 400, code, "The body is not valid JSON.", { fields: [{ path: "(body)", message: "is not valid JSON" }] });
      }
    }
    // The validator reads the body through c.req.json(), which parses the cached text: cache what it should see.
    (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve(JSON.stringify(value));
    await next();
  };
}
