import { Hono } from "hono";
import { configExists } from "../../config/store";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { ledgerOf, outboxOf } from "../service/stubs";
import { valid } from "../validation";
import { pointAnswer, trendsQuery, trendsSchema } from "./trends.schemas";

/** `/admin/trends`: hourly activity of a source or a target, from the objects' hourly counter snapshots (lib/trends.ts). */
export const trends = new Hono<AppEnv>();

trends.get(
  "/",
  requireRole("viewer"),
  describeAdmin({
    tag: "trends",
    summary: "Hourly trend of a source (deliveries, duplicates, refusals) or a target (delivered, failed attempts, latency p50/p99)",
    responses: {
      200: { schema: trendsSchema, description: "one point per hour, oldest first, the current hour last" },
      400: { schema: errorBodySchema, description: "invalid query" },
      404: { schema: errorBodySchema, description: "no such source or target" },
    },
  }),
  valid("query", trendsQuery),
  async (c) => {
    const { source, target, hours } = c.req.valid("query");
    if (source !== undefined) {
      if (!(await configExists(c.env.CONFIG, "source", source))) return errorResponse(c, 404, "not_found", `No source "${source}".`);
      return c.json({ source, hours, points: (await ledgerOf(c.env, source).trends(hours)).map(pointAnswer) });
    }
    if (!(await configExists(c.env.CONFIG, "target", target!))) return errorResponse(c, 404, "not_found", `No target "${target}".`);
    return c.json({ target: target!, hours, points: (await outboxOf(c.env, target!).trends(hours)).map(pointAnswer) });
  },
);
