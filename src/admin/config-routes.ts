import { Hono } from "hono";
import { z } from "zod";
import { fieldErrorSchema, idSchema, type TargetConfig } from "../config/schemas";
import { type ConfigKind, deleteConfig, KINDS, listConfigs, loadConfig, parseConfig, saveConfig, secretRoleConflicts } from "../config/store";
import type { AppEnv } from "../env";
import { errorResponse } from "../lib/errors";
import { log } from "../lib/log";
import { checkTargetUrl, onTargetSaved } from "../outbox/policy";
import { describeAdmin, errorBodySchema } from "./openapi";

/**
 * CRUD over one kind of KV document (`/sources`, `/targets`): the same zod schema as the
 * ingress reads with, field-level 400s, and invalid stored documents listed with their errors.
 */
export function configRoutes(kind: ConfigKind): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const schema = KINDS[kind];
  const tag = `${kind}s`;
  const stored = z.object({ id: z.string(), valid: z.boolean(), config: schema.optional(), errors: z.array(fieldErrorSchema).optional() });

  app.get(
    "/",
    describeAdmin({
      tag,
      summary: `List ${kind}s, invalid stored documents included with their errors`,
      responses: { 200: { schema: z.object({ items: z.array(stored) }), description: `every ${kind}` } },
    }),
    async (c) => {
      const items = await listConfigs(c.env.CONFIG, kind, 0);
      return c.json({ items });
    },
  );

  app.get(
    "/:id",
    describeAdmin({
      tag,
      summary: `Read one ${kind}`,
      responses: { 200: { schema: stored, description: `the ${kind}` }, 404: { schema: errorBodySchema, description: "no such document" } },
    }),
    async (c) => {
      const id = c.req.param("id");
      const loaded = await loadConfig(c.env.CONFIG, kind, id, 0);
      if (loaded.state === "missing") return errorResponse(c, 404, "not_found", `No ${kind} "${id}".`);
      if (loaded.state === "invalid") return c.json({ id, valid: false, errors: loaded.errors });
      return c.json({ id, valid: true, config: loaded.config });
    },
  );

  app.put(
    "/:id",
    describeAdmin({
      tag,
      summary: `Create or replace a ${kind}; defaults are filled in`,
      body: schema,
      responses: {
        200: { schema: stored, description: "replaced" },
        201: { schema: stored, description: "created" },
        400: { schema: errorBodySchema, description: "invalid document, with field-level errors" },
      },
    }),
    async (c) => {
      const id = c.req.param("id");
      const idOk = idSchema.safeParse(id);
      if (!idOk.success) return errorResponse(c, 400, "invalid_document", "Invalid id.", { fields: [{ path: "id", message: idOk.error.issues[0]?.message }] });
      let raw: unknown;
      try {
        raw = await c.req.json();
      } catch {
        return errorResponse(c, 400, "invalid_document", "The body is not valid JSON.", { fields: [{ path: "(document)", message: "is not valid JSON" }] });
      }
      const parsed = parseConfig(kind, raw);
      if (!parsed.ok) return errorResponse(c, 400, "invalid_document", `Invalid ${kind} document.`, { fields: parsed.error });
      if (kind === "target") {
        const url = checkTargetUrl((parsed.value as TargetConfig).url, c.env.ALLOW_HTTP_TARGETS === "true");
        if (!url.ok) return errorResponse(c, 400, "invalid_document", `Invalid ${kind} document.`, { fields: [{ path: "url", message: url.error }] });
      }
      const conflicts = await secretRoleConflicts(c.env.CONFIG, kind, parsed.value);
      if (conflicts.length > 0) return errorResponse(c, 400, "invalid_document", `Invalid ${kind} document.`, { fields: conflicts });
      const existed = (await c.env.CONFIG.get(`${kind}:${id}`, "text")) !== null;
      await saveConfig(c.env.CONFIG, kind, id, parsed.value);
      if (kind === "target") await onTargetSaved(c.env, id, parsed.value as TargetConfig);
      log("info", "config saved", { kind, id, created: !existed });
      return c.json({ id, valid: true, config: parsed.value }, existed ? 200 : 201);
    },
  );

  app.delete(
    "/:id",
    describeAdmin({
      tag,
      summary: `Delete a ${kind}`,
      responses: { 204: { description: "deleted" }, 404: { schema: errorBodySchema, description: "no such document" } },
    }),
    async (c) => {
      const id = c.req.param("id");
      if (!(await deleteConfig(c.env.CONFIG, kind, id))) return errorResponse(c, 404, "not_found", `No ${kind} "${id}".`);
      log("info", "config deleted", { kind, id });
      return c.body(null, 204);
    },
  );

  return app;
}
