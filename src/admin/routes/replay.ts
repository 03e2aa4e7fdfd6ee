import { Hono } from "hono";
import type { AppEnv } from "../../env";
import { audit, ids } from "../../audit/audit";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { replayMany } from "../service/replay";
import { jsonBody, valid } from "../validation";
import { replayManyBody, replayManySchema } from "./replay.schemas";

/** `/admin/replay`: bulk replay across targets' outboxes by filter (one delivery's replay is under /admin/deliveries). */
export const replay = new Hono<AppEnv>();

replay.post(
  "/",
  requireRole("operator"),
  describeAdmin({
    tag: "replay",
    summary: "Bulk replay by filter (dead by default), bounded by limit; needs a reason (X-Audit-Reason)",
    responses: {
      200: { schema: replayManySchema, description: "how many went back to the queue" },
      400: { schema: errorBodySchema, description: "invalid filter, or reason_required: no X-Audit-Reason header" },
    },
  }),
  jsonBody(),
  valid("json", replayManyBody),
  async (c) => {
    const filter = c.req.valid("json");
    await audit(c, {
      action: "delivery.replay-bulk",
      object: ids({ target: filter.target, source: filter.source }),
      after: filter,
      reasonRequired: "A bulk replay needs a reason",
    });
    return c.json(await replayMany(c.env, filter));
  },
);
