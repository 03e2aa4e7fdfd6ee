import type { Hono } from "hono";
import { z } from "zod";
import { fieldErrorSchema } from "../../config/schemas";
import { type ConfigType, listConfigs, loadConfig, SCHEMAS } from "../../config/store";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import { audit } from "../../audit/audit";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { documentChange } from "../reasons";
import { deleteDocument, saveDocument, validateDocument } from "../service/documents";
import { dryRun } from "../service/preview";
import type { TargetConfig } from "../../config/schemas";
import { jsonBody, valid } from "../validation";
import { dryRunSchema } from "./targets.schemas";

/**
 * CRUD over one type of KV document, registered on its resource's app (`/sources`, `/targets`): the
 * same zod schema as ingress reads with, field-level 400s, and invalid stored documents listed with
 * their errors.
 */
export function documentRoutes(app: Hono<AppEnv>, type: ConfigType): void {
  const schema = SCHEMAS[type];
  const tag = `${type}s`;
  const stored = z.object({ id: z.string(), valid: z.boolean(), config: schema.optional(), errors: z.array(fieldErrorSchema).optional() });

  app.get(
    "/",
    requireRole("viewer"),
    describeAdmin({
      tag,
      summary: `List ${type}s, invalid stored documents included with their errors`,
      responses: { 200: { schema: z.object({ items: z.array(stored) }), description: `every ${type}` } },
    }),
    async (c) => c.json({ items: await listConfigs(c.env.CONFIG, type, 0) }),
  );

  app.get(
    "/:id",
    requireRole("viewer"),
    describeAdmin({
      tag,
      summary: `Read one ${type}`,
      responses: { 200: { schema: stored, description: `the ${type}` }, 404: { schema: errorBodySchema, description: "no such document" } },
    }),
    async (c) => {
      const id = c.req.param("id");
      const loaded = await loadConfig(c.env.CONFIG, type, id, 0);
      if (loaded.state === "missing") return errorResponse(c, 404, "not_found", `No ${type} "${id}".`);
      if (loaded.state === "invalid") return c.json({ id, valid: false, errors: loaded.errors });
      return c.json({ id, valid: true, config: loaded.config });
    },
  );

  app.put(
    "/:id",
    requireRole("admin"),
    describeAdmin({
      tag,
      summary:
        type === "target"
          ? "Create or replace a target; defaults are filled in. With ?dryRun=1: validate and preview against the latest delivery of each matching source, without saving"
          : `Create or replace a ${type}; defaults are filled in`,
      responses: {
        200:
          type === "target"
            ? {
                schema: z.union([stored, dryRunSchema]),
                description: "replaced; with ?dryRun=1, the document as it would be saved and its previews (nothing saved)",
              }
            : { schema: stored, description: "replaced" },
        201: { schema: stored, description: "created" },
        400: { schema: errorBodySchema, description: "invalid document, with field-level errors" },
      },
    }),
    jsonBody("invalid_document"),
    valid("json", schema, "invalid_document"),
    async (c) => {
      const id = c.req.param("id") ?? "";
      if (type === "target" && c.req.query("dryRun") === "1") {
        const checked = await validateDocument(c.env, type, id, await c.req.json());
        if (!checked.ok) return errorResponse(c, 400, "invalid_document", `Invalid ${type} document.`, { fields: checked.error });
        // The previews show recorded deliveries as the target would get them.
        await audit(c, { action: "target.dry-run", object: { target: id } });
        return c.json({ id, valid: true, dryRun: true, config: checked.value, previews: await dryRun(c.env, id, checked.value as TargetConfig) });
      }
      // The validator checked the shape; saving adds the id rule, the URL policy and the secret-role rule.
      const saved = await saveDocument(c.env, type, id, await c.req.json(), "api", (change) =>
        audit(c, { action: `${type}.put`, object: { [type]: id }, ...documentChange(type, change) }),
      );
      if (!saved.ok) return errorResponse(c, 400, "invalid_document", `Invalid ${type} document.`, { fields: saved.error });
      return c.json({ id, valid: true, config: saved.value.config }, saved.value.created ? 201 : 200);
    },
  );

  app.delete(
    "/:id",
    requireRole("admin"),
    describeAdmin({
      tag,
      summary: `Delete a ${type}; needs a reason (X-Audit-Reason)`,
      responses: {
        204: { description: "deleted" },
        400: { schema: errorBodySchema, description: "reason_required: no X-Audit-Reason header" },
        404: { schema: errorBodySchema, description: "no such document" },
      },
    }),
    async (c) => {
      const id = c.req.param("id");
      const deleted = await deleteDocument(c.env, type, id, (change) =>
        audit(c, { action: `${type}.delete`, object: { [type]: id }, ...documentChange(type, change) }),
      );
      if (!deleted) return errorResponse(c, 404, "not_found", `No ${type} "${id}".`);
      return c.body(null, 204);
    },
  );
}
