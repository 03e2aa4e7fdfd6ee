import { Hono } from "hono";
import type { AppEnv } from "../../env";
import { describeAdmin, errorBodySchema } from "../openapi";
import { replayMany } from "../service/replay";
import { jsonBody, valid } from "../validation";
import { replayManyBody, replayManySchema } from "./replay.schemas";

/** `/admin/replay`: bulk replay across targets' outboxes by filter (one delivery's replay is under /admin/deliveries). */
export const replay = new Hono<AppEnv>();

replay.post(
  "/",
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
