import { z } from "zod";
import { idSchema } from "../../config/schemas";
import { MAX_REPLAY } from "../../outbox/views";
import { time } from "./shared.schemas";

/** Requests and answers of `POST /admin/replay` (routes/replay.ts). */

/** `POST /admin/replay` body. */
export const replayManyBody = z.strictObject({
  source: idSchema.optional(),
  target: idSchema.optional(),
  state: z.enum(["dead", "delivered", "not_wanted"]).default("dead"),
  from: time.optional(),
  to: time.optional(),
  limit: z.number().int().min(1).max(MAX_REPLAY).default(100),
});

/** `POST /admin/replay`. */
export const replayManySchema = z.object({
  replayed: z.number().int(),
  more: z.boolean().meta({ description: "some matching dispatches are left for another call" }),
  targets: z.array(z.object({ target: z.string(), replayed: z.number().int(), remaining: z.number().int() })),
});
