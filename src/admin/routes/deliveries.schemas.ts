import { z } from "zod";
import { ENRICH_FACTS, idSchema } from "../../config/schemas";
import { type DeliveryRecord, deliveryRecordSchema } from "../../ledger/types";
import { PROVENANCES } from "../../providers/centrepoint/constants";
import type { DeliveryTarget } from "../service/deliveries";
import type { DeliveryPull } from "../service/pull";
import { downloadAnswer, downloadSchema, rawRequestAnswer, rawRequestSchema } from "./sources.schemas";
import { iso, isoTime, isoTimes, time } from "./shared.schemas";
import { attemptAnswer, attemptSchema, dispatchAnswer, dispatchSchema } from "./targets.schemas";

/** Requests and answers of `/admin/deliveries/...` (routes/deliveries.ts); the dashboard parses its filters with `deliveryListQuery` too. */

/** `GET /admin/deliveries` query. */
export const deliveryListQuery = z.strictObject({
  q: z.string().min(1).max(200).optional().meta({ description: "exact delivery id, subject, upload id, tracking id or subject identifier" }),
  source: idSchema.optional(),
  kind: z.string().max(64).optional(),
  subject: z.string().max(200).optional(),
  provenance: z.enum(PROVENANCES).optional().meta({ description: "centrepoint-history: deliveries backfilled by reconciliation" }),
  from: time.optional(),
  to: time.optional(),
  attention: z.enum(["true", "false"]).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

/** `POST /admin/deliveries/:source/:id/replay` body. */
export const replayOneBody = z.strictObject({ target: idSchema.optional() });

/**
 * A delivery in the ledger, as the API shows it: the ledger's record (`deliveryRecordSchema`, its one
 * definition) with its source, and its times as ISO 8601 (`DELIVERY_TIMES`).
 */
export const deliverySchema = deliveryRecordSchema.extend({
  source: z.string(),
  receivedAt: isoTime,
  lastSeenAt: isoTime,
  bodyPrunedAt: isoTime.nullable().meta(deliveryRecordSchema.shape.bodyPrunedAt.meta() ?? {}),
});

/** The record's times (epoch ms in the ledger), answered as ISO 8601. */
export const DELIVERY_TIMES = ["receivedAt", "lastSeenAt", "bodyPrunedAt"] as const satisfies readonly (keyof DeliveryRecord)[];

// ---- the pull side (docs/pull.md) ----------------------------------------------------------------
const fact = z.enum(ENRICH_FACTS);

/** The stored enrichment of a delivery (facts found, last error per fact not found). */
const storedEnrichmentSchema = z.object({
  found: z
    .record(z.string(), z.unknown())
    .meta({ description: "subject, upload, datafiles: only what was found; never date of birth, gender, weight or height" }),
  errors: z.record(z.string(), z.string()),
  settled: z.boolean(),
  attempts: z.number().int(),
  updatedAt: isoTime.meta({ description: "the last attempt" }),
});

/** `pull` of `GET /admin/deliveries/:source/:id` (`pullAnswer`). */
export const deliveryPullSchema = z.object({
  enrichment: z
    .object({
      state: z.enum(["pending", "complete", "partial", "failed"]).nullable(),
      facts: z.array(fact),
      stored: storedEnrichmentSchema.nullable(),
      job: z.object({ attempts: z.number().int(), nextAt: isoTime.nullable(), giveUpAt: isoTime, createdAt: isoTime, updatedAt: isoTime }).nullable(),
      releasedAt: isoTime.nullable(),
      targets: z.array(
        z.object({
          targetId: z.string(),
          facts: z.array(fact),
          deadlineAt: isoTime.nullable().meta({ description: "null: held until enrichment succeeds or an operator releases it" }),
          handedAt: isoTime.nullable(),
          waiting: z.enum(["held", "until_deadline", "handed"]),
        }),
      ),
    })
    .nullable()
    .meta({ description: "null when no target wanted this event enriched" }),
  rawRequests: z.array(rawRequestSchema),
  completes: z
    .object({ source: z.string(), deliveryId: z.string() })
    .nullable()
    .meta({ description: "the raw_processing delivery whose automatic request this data_retrieval event completes" }),
  downloads: z.array(downloadSchema),
});

/** A delivery's pull side as the API answers it: its times ISO 8601. */
export function pullAnswer(p: DeliveryPull) {
  const e = p.enrichment;
  return {
    ...p,
    enrichment: e && {
      ...e,
      stored: e.stored && isoTimes(e.stored, ["updatedAt"]),
      job: e.job && isoTimes(e.job, ["nextAt", "giveUpAt", "createdAt", "updatedAt"]),
      releasedAt: iso(e.releasedAt),
      targets: e.targets.map((t) => isoTimes(t, ["deadlineAt", "handedAt"])),
    },
    rawRequests: p.rawRequests.map(rawRequestAnswer),
    downloads: p.downloads.map(downloadAnswer),
  };
}

/** `POST /admin/deliveries/:source/:id/enrichment/retry`. */
export const retryEnrichmentSchema = z.object({
  source: z.string(),
  deliveryId: z.string(),
  state: z.literal("pending"),
  facts: z.array(fact),
  nextAt: isoTime.nullable(),
});

/** `POST /admin/deliveries/:source/:id/enrichment/release`. */
export const releaseEnrichmentSchema = z.object({
  source: z.string(),
  deliveryId: z.string(),
  released: z.number().int().meta({ description: "target hand-offs sent now without waiting further" }),
});

/** `GET /admin/deliveries/:source/:id`. */
export const deliveryDetailSchema = deliverySchema.extend({
  body: z.object({ text: z.string(), base64: z.string() }),
  envelope: z.unknown(),
  targets: z.array(
    z.object({
      target: z.string(),
      handoff: z.object({
        targetId: z.string(),
        plannedAt: isoTime,
        handedAt: isoTime.nullable(),
        tries: z.number().int(),
        lastError: z.string().nullable(),
      }),
      dispatch: dispatchSchema.nullable().meta({ description: "null until the target's outbox has it" }),
      attempts: z.array(attemptSchema),
    }),
  ),
  pull: deliveryPullSchema.meta({ description: "the pull side (docs/pull.md): enrichment, raw-data requests, file downloads" }),
});

/** One target's part of a delivery as the API answers it: its times ISO 8601. */
export function deliveryTargetAnswer(t: DeliveryTarget) {
  return {
    ...t,
    handoff: isoTimes(t.handoff, ["plannedAt", "handedAt"]),
    dispatch: t.dispatch && dispatchAnswer(t.dispatch),
    attempts: t.attempts.map(attemptAnswer),
  };
}

/** `POST /admin/deliveries/:source/:id/replay`. */
export const replayOneSchema = z.object({
  source: z.string(),
  deliveryId: z.string(),
  targets: z.array(
    z.object({
      target: z.string(),
      replayed: z.boolean().meta({ description: "false: it was still pending, in flight or held" }),
      payloadFrom: z.enum(["outbox", "ledger", "archive"]).meta({
        description:
          "where the payload came from: the target's outbox, or (its dispatch pruned after delivery) the ledger, or the R2 archive once retention pruned the body",
      }),
    }),
  ),
});
