import type { TransformConfig } from "../config/schemas";
import { evaluateExpression, type ExpressionFunctions } from "../lib/jsonata";
import { err, ok, type Result } from "../lib/result";
import type { HandoffItem } from "./types";

/**
 * A target's `filter` and `transform` (docs/transforms.md): pure functions of one dispatch's
 * payload, evaluated with the bounds of lib/jsonata.ts. Nothing here touches storage or the network.
 */

/** What a dispatch's expressions are evaluated over. */
export interface TransformInput {
  /** The CloudEvents envelope as a cloudevents target gets it (enrichment included). */
  event: unknown;
  delivery: { id: string; kind: string; source: string; receivedAt: string; body: unknown };
  target: { id: string };
}

/** The payload fields of a dispatch the expressions read. */
export type DispatchPayload = Pick<HandoffItem, "source" | "deliveryId" | "kind" | "receivedAt" | "envelope" | "body">;

/** Largest transformed body, bytes. */
export const MAX_TRANSFORMED_BYTES = 5 * 1024 * 1024;

/** The input of a dispatch's expressions. CentrePoint's body is parsed when it is JSON, else given as text. */
export function transformInput(item: DispatchPayload, targetId: string): TransformInput {
  const text = new TextDecoder().decode(item.body);
  return {
    event: parseOr(item.envelope, null),
    delivery: { id: item.deliveryId, kind: item.kind, source: item.source, receivedAt: new Date(item.receivedAt).toISOString(), body: parseOr(text, text) },
    target: { id: targetId },
  };
}

function parseOr(text: string, fallback: unknown): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return fallback;
  }
}

/**
 * Whether the filter wants the dispatch. JSONata's boolean rules: false, nothing (a path that
 * matches nothing), null, 0, "" and [] are not wanted; anything else is.
 */
export async function filterWants(filter: string, input: TransformInput): Promise<Result<boolean, string>> {
  const r = await evaluateExpression(filter, input);
  if (!r.ok) return err(`filter: ${r.error}`);
  const v = r.value;
  return ok(!(v === undefined || v === null || v === false || v === 0 || v === "" || (Array.isArray(v) && v.length === 0)));
}

/** A transformed request's method, content type, headers and body. */
export interface Shaped {
  method: TransformConfig["method"];
  contentType: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/**
 * Evaluates a transform. `secret(name)` gives the value `$secret(name)` returns, or undefined when
 * the name is not one of `transform.secrets` (an error: the expression may read only those).
 */
export async function shapeRequest(
  t: TransformConfig,
  input: TransformInput | { batch: TransformInput[] },
  secret: (name: string) => string | undefined,
): Promise<Result<Shaped, string>> {
  const functions: ExpressionFunctions = {
    secret: {
      signature: "<s:s>",
      fn: ((name: string) => {
        const value = t.secrets.includes(name) ? secret(name) : undefined;
        if (value === undefined) throw { code: "U1002", message: `$secret("${name}") is not one of this target's transform.secrets` };
        return value;
      }) as (...args: never[]) => unknown,
    },
  };
  const body = await evaluateExpression(t.body, input, functions);
  if (!body.ok) return err(`transform.body: ${body.error}`);
  const encoded = encodeBody(t.contentType, body.value);
  if (!encoded.ok) return err(`transform.body: ${encoded.error}`);
  if (encoded.value.length > MAX_TRANSFORMED_BYTES) return err(`transform.body: the body is ${encoded.value.length} bytes, more than ${MAX_TRANSFORMED_BYTES}`);
  const headers: Record<string, string> = {};
  for (const [name, expression] of Object.entries(t.headers ?? {})) {
    const v = await evaluateExpression(expression, input, functions);
    if (!v.ok) return err(`transform.headers.${name}: ${v.error}`);
    if (v.value === undefined || v.value === null) continue; // nothing: the header is left out
    if (typeof v.value !== "string" && typeof v.value !== "number" && typeof v.value !== "boolean")
      return err(`transform.headers.${name}: must give a string, number or boolean, not ${Array.isArray(v.value) ? "an array" : "an object"}`);
    const value = String(v.value);
    if (/[\r\n\0]/.test(value) || value.length > 8192) return err(`transform.headers.${name}: must be one line of at most 8192 characters`);
    headers[name.toLowerCase()] = value;
  }
  return ok({ method: t.method, contentType: t.contentType, headers, body: encoded.value });
}

/**
 * The body's bytes in its content type: JSON text; a form from an object (nested values as JSON
 * text, as REDCap's `data` field takes them; null as empty); plain text from a string or number.
 */
export function encodeBody(contentType: TransformConfig["contentType"], value: unknown): Result<Uint8Array, string> {
  const bytes = (s: string) => new TextEncoder().encode(s);
  if (value === undefined) return err("the expression gave nothing (a path that matches nothing?)");
  if (contentType === "application/json") return ok(bytes(JSON.stringify(value)));
  if (contentType === "text/plain") {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return ok(bytes(String(value)));
    return err("text/plain needs a string, number or boolean");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return err("a form body needs an object of fields");
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) continue;
    form.append(k, v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  }
  return ok(bytes(form.toString()));
}

/** The forms a secret value takes in a request (as is, JSON-escaped, URL- and form-encoded): each is redacted from what is stored or shown. */
export function secretForms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const form = new URLSearchParams({ v: value }).toString().slice(2);
  return [...new Set([value, json, encodeURIComponent(value), form])];
}
