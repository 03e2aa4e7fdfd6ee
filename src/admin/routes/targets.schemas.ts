import { z } from "zod";
import { idSchema } from "../../config/schemas";
import { type AttemptView, DISPATCH_STATES, type DispatchView, MAX_LIST, type OutboxHealth } from "../../outbox/views";
import { iso, isoTime, isoTimes, time } from "./shared.schemas";

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

/** A dispatch: one event for one target, in that target's outbox (`dispatchAnswer`). */
export const dispatchSchema = z.object({
  source: z.string(),
  deliveryId: z.string(),
  kind: z.string(),
  subject: z.string().nullable(),
  receivedAt: isoTime,
  state: z.enum(DISPATCH_STATES as [string, ...string[]]),
  windowAttempts: z.number().int(),
  nextAt: isoTime.nullable(),
  firstPlannedAt: isoTime,
  lastError: z.string().nullable(),
  deliveredAt: isoTime.nullable(),
  enqueuedAt: isoTime,
  updatedAt: isoTime,
});

/** A dispatch as the API answers it: its times ISO 8601. */
export function dispatchAnswer(d: DispatchView) {
  return isoTimes(d, ["receivedAt", "nextAt", "firstPlannedAt", "deliveredAt", "enqueuedAt", "updatedAt"]);
}

/** One attempt of a dispatch (`attemptAnswer`). */
export const attemptSchema = z.object({
  n: z.number().int(),
  startedAt: isoTime,
  durationMs: z.number().nullable(),
  status: z.number().int().nullable(),
  responseHeaders: z.record(z.string(), z.string()).nullable(),
  responseBody: z.string().nullable().meta({ description: "first 4 KiB, the target's own secrets redacted" }),
  errorClass: z.enum(["dns", "connect", "timeout", "tls", "http", "config", "transform"]).nullable(),
  error: z.string().nullable(),
  outcome: z.enum(["in_flight", "success", "failure", "interrupted"]),
});

/** An attempt as the API answers it: its start ISO 8601. */
export function attemptAnswer(a: AttemptView) {
  return isoTimes(a, ["startedAt"]);
}

/** `GET /admin/targets/:id/health` (`healthAnswer`). */
export const healthSchema = z.object({
  targetId: z.string().nullable(),
  counts: z.record(z.string(), z.number().int()).meta({ description: "dispatches per state" }),
  oldestPendingAgeMs: z.number().nullable(),
  heldBy: z.enum(["gone", "config"]).nullable(),
  heldReason: z.string().nullable(),
  breaker: z.object({ status: z.enum(["closed", "open", "half_open"]), consecutiveFailures: z.number().int(), probeAt: isoTime.nullable() }),
  lastError: z.object({ at: isoTime, message: z.string() }).nullable(),
  lastSuccessAt: isoTime.nullable(),
  retention: z
    .object({ days: z.number().int(), prunedDispatches: z.number().int(), prunedAttempts: z.number().int(), lastPrunedAt: isoTime.nullable() })
    .meta({ description: "delivered dispatches are kept `days`; how many rows retention removed, and when it last did" }),
});

/** A target's health as the API answers it: its times ISO 8601. */
export function healthAnswer(h: OutboxHealth) {
  return {
    ...h,
    breaker: isoTimes(h.breaker, ["probeAt"]),
    lastError: h.lastError && isoTimes(h.lastError, ["at"]),
    lastSuccessAt: iso(h.lastSuccessAt),
    retention: isoTimes(h.retention, ["lastPrunedAt"]),
  };
}

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
