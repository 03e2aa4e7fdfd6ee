import { z } from "zod";
import { idSchema } from "../../config/schemas";
import { MAX_TREND_HOURS, type TrendPoint } from "../../lib/trends";
import { iso, isoTime } from "./shared.schemas";

/** `?source=` or `?target=` (exactly one), and how many hours back (the current one included). */
export const trendsQuery = z
  .object({
    source: idSchema.optional(),
    target: idSchema.optional(),
    hours: z.coerce.number().int().min(1).max(MAX_TREND_HOURS).default(24),
  })
  .refine((q) => (q.source === undefined) !== (q.target === undefined), { message: "Give exactly one of source and target.", path: ["source"] });

const count = z.number().int().nonnegative();
const ms = z.number().nonnegative().nullable().describe("ms; a histogram bucket's upper bound; null when nothing was delivered that hour");

export const sourcePointSchema = z.object({ at: isoTime.describe("start of the hour (UTC)"), deliveries: count, duplicates: count, refusals: count });
export const targetPointSchema = z.object({
  at: isoTime.describe("start of the hour (UTC)"),
  delivered: count,
  failedAttempts: count,
  latencyP50Ms: ms,
  latencyP99Ms: ms,
});

export const trendsSchema = z.union([
  z.object({ source: idSchema, hours: z.number().int(), points: z.array(sourcePointSchema) }),
  z.object({ target: idSchema, hours: z.number().int(), points: z.array(targetPointSchema) }),
]);

/** A trend point as the API answers it: the hour's start as ISO 8601, then its values. */
export const pointAnswer = (p: TrendPoint) => ({ at: iso(p.at), ...p.values });
