import { Hono } from "hono";
import { z } from "zod";
import { idSchema } from "../../config/schemas";
import { configExists } from "../../config/store";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import { describeAdmin, errorBodySchema } from "../openapi";
import { deadPageSchema, deadQuery, healthSchema, previewBody, previewSchema, replayManyBody, replayManySchema, resumeSchema } from "../schemas";
import { loadConfig } from "../../config/store";
import { previewDelivery } from "../service/preview";
import { replayMany, resumeTarget } from "../service/replay";
import { outboxOf } from "../service/stubs";
import { jsonBody, valid } from "../validation";

/** Admin routes of the fan-out engine: dead letters, health, resume, bulk replay. Mounted under /admin. */
export const targetRoutes = new Hono<AppEnv>();

const targetParam = z.object({ id: idSchema });
const unknownTarget = { schema: errorBodySchema, description: "no such target" };

targetRoutes.post(
  "/replay",
  describeAdmin({
    tag: "replay",
    summary: "Bulk replay by filter (dead by default), bounded by limit",
    responses: {
      200: { schema: replayManySchema, description: "how many went back to the queue" },
      400: { schema: errorBodySchema, description: "invalid filter" },
    },
  }),
  jsonBody(),
  valid("json", replayManyBody),
  async (c) => c.json(await replayMany(c.env, c.req.valid("json"))),
);

targetRoutes.get(
  "/targets/:id/dead",
  describeAdmin({
    tag: "targets",
    summary: "Dead letters of a target, newest first",
    responses: { 200: { schema: deadPageSchema, description: "a page" }, 400: { schema: errorBodySchema, description: "invalid query" }, 404: unknownTarget },
  }),
  valid("param", targetParam),
  valid("query", deadQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "target", id))) return errorResponse(c, 404, "not_found", `No target "${id}".`);
    const page = await outboxOf(c.env, id).list({ ...c.req.valid("query"), state: "dead" });
    return c.json({ target: id, items: page.items, next: page.cursor });
  },
);

targetRoutes.get(
  "/targets/:id/health",
  describeAdmin({
    tag: "targets",
    summary: "Backlog, dead and held counts, breaker, last error and success of a target",
    responses: { 200: { schema: healthSchema, description: "the health report" }, 404: unknownTarget },
  }),
  valid("param", targetParam),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "target", id))) return errorResponse(c, 404, "not_found", `No target "${id}".`);
    return c.json(await outboxOf(c.env, id).health());
  },
);

targetRoutes.post(
  "/targets/:id/resume",
  describeAdmin({
    tag: "targets",
    summary: "Resume a held target (after a 410 or a fix): held dispatches go back to pending",
    responses: { 200: { schema: resumeSchema, description: "how many held dispatches go out again" }, 404: unknownTarget },
  }),
  valid("param", targetParam),
  async (c) => {
    const { id } = c.req.valid("param");
    const resumed = await resumeTarget(c.env, id);
    if (!resumed) return errorResponse(c, 404, "not_found", `No target "${id}".`);
    return c.json({ target: id, ...resumed });
  },
);

targetRoutes.post(
  "/targets/:id/preview",
  describeAdmin({
    tag: "targets",
    summary: "A recorded delivery as this target would get it (filter, transform, auth, signing), secrets redacted; nothing is sent",
    responses: {
      200: { schema: previewSchema, description: "the preview" },
      400: { schema: errorBodySchema, description: "invalid body" },
      404: { schema: errorBodySchema, description: "no such target or delivery" },
      409: { schema: errorBodySchema, description: "the target document is invalid" },
    },
  }),
  valid("param", targetParam),
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
    return c.json(preview.value);
  },
);
