import { Hono } from "hono";
import { configExists } from "../../config/store";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import { audit } from "../../audit/audit";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { loadConfig } from "../../config/store";
import { previewDelivery } from "../service/preview";
import { resumeTarget } from "../service/replay";
import { outboxOf } from "../service/stubs";
import { jsonBody, valid } from "../validation";
import { documentRoutes } from "./documents";
import { idParam } from "./shared.schemas";
import { deadPageSchema, deadQuery, dispatchAnswer, healthAnswer, healthSchema, previewBody, previewSchema, resumeSchema } from "./targets.schemas";

/** `/admin/targets`: the target documents (CRUD, `PUT ?dryRun=1`), and per target its outbox's dead letters and health, resume, and a delivery's preview. */
export const targets = new Hono<AppEnv>();
documentRoutes(targets, "target");

const unknownTarget = { schema: errorBodySchema, description: "no such target" };

targets.get(
  "/:id/dead",
  requireRole("viewer"),
  describeAdmin({
    tag: "targets",
    summary: "Dead letters of a target, newest first",
    responses: { 200: { schema: deadPageSchema, description: "a page" }, 400: { schema: errorBodySchema, description: "invalid query" }, 404: unknownTarget },
  }),
  valid("param", idParam),
  valid("query", deadQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "target", id))) return errorResponse(c, 404, "not_found", `No target "${id}".`);
    const page = await outboxOf(c.env, id).list({ ...c.req.valid("query"), state: "dead" });
    return c.json({ target: id, items: page.items.map(dispatchAnswer), next: page.cursor });
  },
);

targets.get(
  "/:id/health",
  requireRole("viewer"),
  describeAdmin({
    tag: "targets",
    summary: "Backlog, dead and held counts, breaker, last error and success of a target",
    responses: { 200: { schema: healthSchema, description: "the health report" }, 404: unknownTarget },
  }),
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "target", id))) return errorResponse(c, 404, "not_found", `No target "${id}".`);
    return c.json(healthAnswer(await outboxOf(c.env, id).health()));
  },
);

targets.post(
  "/:id/resume",
  requireRole("operator"),
  describeAdmin({
    tag: "targets",
    summary: "Resume a held target (after a 410 or a fix): held dispatches go back to pending",
    responses: { 200: { schema: resumeSchema, description: "how many held dispatches go out again" }, 404: unknownTarget },
  }),
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "target", id))) return errorResponse(c, 404, "not_found", `No target "${id}".`);
    await audit(c, { action: "target.resume", object: { target: id } });
    const resumed = await resumeTarget(c.env, id);
    if (!resumed) return errorResponse(c, 404, "not_found", `No target "${id}".`);
    return c.json({ target: id, ...resumed });
  },
);

targets.post(
  "/:id/preview",
  requireRole("operator"),
  describeAdmin({
    tag: "targets",
    summary:
      "A recorded delivery as this target would get it (filter, transform, auth, signing), secrets redacted; nothing is sent (operator and up: a `delivery.read` audit entry)",
    responses: {
      200: { schema: previewSchema, description: "the preview" },
      400: { schema: errorBodySchema, description: "invalid body" },
      404: { schema: errorBodySchema, description: "no such target or delivery" },
      409: { schema: errorBodySchema, description: "the target document is invalid" },
    },
  }),
  valid("param", idParam),
  jsonBody(),
  valid("json", previewBody),
  async (c) => {
    const { id } = c.req.valid("param");
    const { source, deliveryId } = c.req.valid("json");
    const loaded = await loadConfig(c.env.CONFIG, "target", id, 0);
    if (loaded.state === "missing") return errorResponse(c, 404, "not_found", `No target "${id}".`);
    if (loaded.state === "invalid")
      return errorResponse(c, 409, "invalid_document", `Target "${id}" is invalid; fix it first (PUT with ?dryRun=1 previews a fix).`);
    if (!(await configExists(c.env.CONFIG, "source", source))) return errorResponse(c, 404, "not_found", `No source "${source}".`);
    const preview = await previewDelivery(c.env, id, loaded.config, source, deliveryId);
    if (!preview.ok) return errorResponse(c, 404, "not_found", preview.error);
    await audit(c, { action: "delivery.read", object: { source, delivery: deliveryId, target: id } });
    return c.json(preview.value);
  },
);
