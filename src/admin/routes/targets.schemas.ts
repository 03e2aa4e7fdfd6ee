import { z } from "zod";
import { idSchema } from "../../config/schemas";
import { DISPATCH_STATES, MAX_LIST } from "../../outbox/views";
import { time } from "./shared.schemas";

/** Requests and answers of `/admin/targets/...` (routes/targets.ts); dispatches and attempts live in a target's outbox. */

/** `GET /admin/targets/:id/dead` query. */
export const deadQuery = z.strictObject({
  source: idSchema.optional(),
  from: time.optional(),
  to: time.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST).default(50),
  cursor: z
    .string()
    .regex(/^\d{1,15}$/, "is not a cursor from this API")
    .optional(),
});

/** A dispatch: one event for one target, in that target's outbox. Times are epoch ms. */
export const dispatchSchema = z.object({
  source: z.string(),
  deliveryId: z.string(),
  kind: z.string(),
  subject: z.string().nullable(),
  receivedAt: z.number(),
  state: z.enum(DISPATCH_STATES as [string, ...string[]]),
  windowAttempts: z.number().int(),
  nextAt: z.number().nullable(),
  firstPlannedAt: z.number(),
  lastError: z.string().nullable(),
  deliveredAt: z.number().nullable(),
  enqueuedAt: z.number(),
  updatedAt: z.number(),
});

/** One attempt of a dispatch. */
export const attemptSchema = z.object({
  n: z.number().int(),
  startedAt: z.number(),
  durationMs: z.number().nullable(),
  status: z.number().int().nullable(),
  responseHeaders: z.record(z.string(), z.string()).nullable(),
  responseBody: z.string().nullable().meta({ description: "first 4 KiB, the target's own secrets redacted" }),
  errorClass: z.enum(["dns", "connect", "timeout", "tls", "http", "config", "transform"]).nullable(),
  error: z.string().nullable(),
  outcome: z.enum(["in_flight", "success", "failure", "interrupted"]),
});

/** `GET /admin/targets/:id/health`. */
export const healthSchema = z.object({
  targetId: z.string().nullable(),
  counts: z.record(z.string(), z.number().int()).meta({ description: "dispatches per state" }),
  oldestPendingAgeMs: z.number().nullable(),
  heldBy: z.enum(["gone", "config"]).nullable(),
  heldReason: z.string().nullable(),
  breaker: z.object({ status: z.enum(["closed", "open", "half_open"]), consecutiveFailures: z.number().int(), probeAt: z.number().nullable() }),
  lastError: z.object({ at: z.number(), message: z.string() }).nullable(),
  lastSuccessAt: z.number().nullable(),
});

/** `GET /admin/targets/:id/dead`. */
export const deadPageSchema = z.object({ target: z.string(), items: z.array(dispatchSchema), next: z.string().nullable() });

/** `POST /admin/targets/:id/resume`. */
export const resumeSchema = z.object({ target: z.string(), resumed: z.number().int() });

/** `POST /admin/targets/:id/preview` body: a recorded delivery. */
export const previewBody = z.strictObject({ source: idSchema, deliveryId: z.string().min(1).max(200) });

/** A delivery as the target would get it, secrets redacted; `request` is null when not wanted or an expression failed (`error`). */
export const previewSchema = z.object({
  wanted: z.boolean(),
  request: z.object({ method: z.string(), url: z.string(), headers: z.record(z.string(), z.string()), body: z.string() }).nullable(),
  error: z.string().nullable(),
});

/** `PUT /admin/targets/:id?dryRun=1`: the document as it would be saved, and a preview per matching source's latest delivery. */
export const dryRunSchema = z.object({
  id: z.string(),
  valid: z.literal(true),
  dryRun: z.literal(true),
  config: z.unknown(),
  previews: z.array(previewSchema.extend({ source: z.string(), deliveryId: z.string() })),
});
