import { z } from "zod";
import { ENRICH_FACTS, idSchema } from "../config/schemas";
import { DISPATCH_STATES, MAX_LIST, MAX_REPLAY } from "../outbox/views";
import { PROVENANCES } from "../providers/centrepoint/constants";
import { REPORTS_KEPT } from "../reconcile/store";

/**
 * Shapes of the admin API's requests and answers, one zod schema each: the routes validate with
 * them (admin/validation.ts), the dashboard parses its filters with the same ones, and
 * /admin/openapi.json is generated from them.
 */

/** ISO 8601 time with an offset, as epoch ms. */
const time = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
/** A delivery id as it appears in a path. */
export const deliveryIdParam = z.string().min(1).max(256);

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

/** `POST /admin/replay` body. */
export const replayManyBody = z.strictObject({
  source: idSchema.optional(),
  target: idSchema.optional(),
  state: z.enum(["dead", "delivered", "not_wanted"]).default("dead"),
  from: time.optional(),
  to: time.optional(),
  limit: z.number().int().min(1).max(MAX_REPLAY).default(100),
});

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

/** `GET /admin/sources/:id/handshakes` query. */
export const handshakesQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(50) });

const isoTime = z.iso.datetime();

/** A delivery in the ledger, as the API shows it. */
export const deliverySchema = z.object({
  source: z.string(),
  seq: z.number().int(),
  deliveryId: z.string(),
  idDerived: z.boolean(),
  event: z.string().nullable(),
  kind: z.string(),
  subject: z.string().nullable(),
  attention: z.string().nullable(),
  receivedAt: isoTime,
  lastSeenAt: isoTime,
  sourceIp: z.string().nullable(),
  headers: z.record(z.string(), z.string()),
  bodySha256: z.string(),
  bodySize: z.number().int(),
  recordHash: z.string(),
  duplicateCount: z.number().int(),
  provenance: z.enum(PROVENANCES).meta({ description: "webhook: pushed by CentrePoint; centrepoint-history: backfilled from its delivery history" }),
  sameBodyAs: z.string().nullable().meta({ description: "an earlier delivery of this source with the same body under another id (a possible replay)" }),
  bodyPrunedAt: isoTime.nullable().meta({ description: "when retention pruned the body and the envelope (digests kept; the archive has them), or null" }),
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

// ---- the pull side (docs/pull.md) ----------------------------------------------------------------
const fact = z.enum(ENRICH_FACTS);

/** A raw-data request of the relay's automatic queue. Times are epoch ms. */
export const rawRequestSchema = z.object({
  id: z.number().int(),
  source: z.string(),
  triggerDeliveryId: z.string().meta({ description: "the raw_processing.completed delivery that asked for it first" }),
  triggeredBy: z.array(z.string()).meta({ description: "every delivery that asked for it (duplicates and replays are not requested again)" }),
  part: z.number().int(),
  parts: z.number().int().meta({ description: "gt3x ranges over 15 days are split into consecutive requests" }),
  studyId: z.string(),
  subjectId: z.string(),
  fileFormat: z.string(),
  beginUtc: z.string(),
  endUtc: z.string(),
  state: z.enum(["queued", "submitting", "active", "completed", "error", "failed", "lost", "invalid"]),
  trackingId: z.string().nullable(),
  queuedAt: z.number(),
  submittedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  nextAt: z.number().nullable(),
  tries: z.number().int(),
  upstreamStatus: z.string().nullable(),
  error: z.string().nullable(),
  overdue: z.boolean().meta({ description: "still active past CentrePoint's 6-hour cancel: reported" }),
  completionDeliveryId: z.string().nullable().meta({ description: "the data_retrieval_complete delivery that reported it" }),
});

/** One download through a relay file link. */
export const downloadSchema = z
  .object({
    id: z.number().int(),
    at: z.number().meta({ description: "the latest download of the link with this outcome, epoch ms" }),
    firstAt: z.number().meta({ description: "the first one, epoch ms" }),
    count: z.number().int().meta({ description: "downloads of the link with this outcome" }),
    targetId: z.string().meta({ description: "the target the link was issued to" }),
    fileId: z.string(),
    deliveryId: z.string().nullable(),
    clientIp: z.string().nullable().meta({ description: "CF-Connecting-IP of the latest" }),
    firstIp: z.string().nullable().meta({ description: "CF-Connecting-IP of the first" }),
    outcome: z.string().meta({ description: "redirected, or upstream_error: <CentrePoint's status>" }),
  })
  .meta({ description: "one row per link (target and file) and outcome" });

/** The stored enrichment of a delivery (facts found, last error per fact not found). */
const storedEnrichmentSchema = z.object({
  found: z
    .record(z.string(), z.unknown())
    .meta({ description: "subject, upload, datafiles: only what was found; never date of birth, gender, weight or height" }),
  errors: z.record(z.string(), z.string()),
  settled: z.boolean(),
  attempts: z.number().int(),
  updatedAt: z.number(),
});

/** `pull` of `GET /admin/deliveries/:source/:id`. */
export const deliveryPullSchema = z.object({
  enrichment: z
    .object({
      state: z.enum(["pending", "complete", "partial", "failed"]).nullable(),
      facts: z.array(fact),
      stored: storedEnrichmentSchema.nullable(),
      job: z
        .object({ attempts: z.number().int(), nextAt: z.number().nullable(), giveUpAt: z.number(), createdAt: z.number(), updatedAt: z.number() })
        .nullable(),
      releasedAt: z.number().nullable(),
      targets: z.array(
        z.object({
          targetId: z.string(),
          facts: z.array(fact),
          deadlineAt: z.number().nullable().meta({ description: "null: held until enrichment succeeds or an operator releases it" }),
          handedAt: z.number().nullable(),
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

/** `POST /admin/deliveries/:source/:id/enrichment/retry`. */
export const retryEnrichmentSchema = z.object({
  source: z.string(),
  deliveryId: z.string(),
  state: z.literal("pending"),
  facts: z.array(fact),
  nextAt: z.number().nullable(),
});

/** `POST /admin/deliveries/:source/:id/enrichment/release`. */
export const releaseEnrichmentSchema = z.object({
  source: z.string(),
  deliveryId: z.string(),
  released: z.number().int().meta({ description: "target hand-offs sent now without waiting further" }),
});

/** `GET /admin/sources/:id/raw-requests` query. */
export const rawRequestsQuery = z.strictObject({
  state: rawRequestSchema.shape.state.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

/** `GET /admin/sources/:id/raw-requests`. */
export const rawRequestsSchema = z.object({ source: z.string(), items: z.array(rawRequestSchema) });

/** `GET /admin/sources/:id/downloads` query. */
export const downloadsQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(50) });

/** `GET /admin/sources/:id/downloads`. */
export const downloadsSchema = z.object({
  source: z.string(),
  items: z.array(downloadSchema).meta({ description: "latest download first; the ledger keeps 100,000 rows (links), the least recently used go first" }),
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
        plannedAt: z.number(),
        handedAt: z.number().nullable(),
        tries: z.number().int(),
        lastError: z.string().nullable(),
      }),
      dispatch: dispatchSchema.nullable().meta({ description: "null until the target's outbox has it" }),
      attempts: z.array(attemptSchema),
    }),
  ),
  pull: deliveryPullSchema.meta({ description: "the pull side (docs/pull.md): enrichment, raw-data requests, file downloads" }),
});

/** `GET` and `POST /admin/sources/:id/integrity`: the latest finished run's report (null fields until one finished) and the run under way. */
export const integritySchema = z.object({
  source: z.string(),
  ok: z.boolean().nullable().meta({ description: "the latest finished run's verdict; null until a run finished" }),
  mode: z.enum(["incremental", "full"]).nullable(),
  checked: z.number().int().meta({ description: "records the latest run verified" }),
  fromSeq: z.number().int().nullable(),
  headHash: z.string().nullable().meta({ description: "record_hash of the last verified record: keep it outside the relay" }),
  firstBroken: z.object({ seq: z.number().int(), deliveryId: z.string(), reason: z.string() }).nullable(),
  prunedBodies: z.number().int().meta({ description: "records of the latest run whose body retention pruned: link verified, body digest not recomputed" }),
  startedAt: isoTime.nullable(),
  checkedAt: isoTime.nullable(),
  verifiedThrough: z.number().int().meta({ description: "every record through this seq has been verified" }),
  head: z.number().int().meta({ description: "the newest record's seq" }),
  running: z
    .object({ mode: z.enum(["incremental", "full"]), through: z.number().int(), upTo: z.number().int(), startedAt: isoTime, checked: z.number().int() })
    .nullable()
    .meta({ description: "a run under way (it goes on from the ledger's alarm, one slice at a time), or null" }),
});

/** `GET /admin/sources/:id/export` query: received times, ISO 8601 with an offset, `from` inclusive, `to` exclusive; both optional. */
export const exportQuery = z.strictObject({
  from: time.optional().meta({ description: "first received time (inclusive); the ledger's start without it" }),
  to: time.optional().meta({ description: "end of the received times (exclusive); the newest record without it" }),
});

/** `GET /admin/sources/:id/lifecycle`: archive, retention and integrity progress (times ISO 8601). */
export const lifecycleSchema = z.object({
  source: z.string(),
  head: z.number().int().meta({ description: "the newest record's seq" }),
  archive: z.object({
    archivedThrough: z.number().int().meta({ description: "every record through this seq is in R2" }),
    lagRecords: z.number().int(),
    segments: z.number().int(),
    records: z.number().int(),
    bytes: z.number().int(),
    lastArchivedAt: isoTime.nullable(),
    nextAt: isoTime.nullable(),
    halted: z.string().nullable().meta({ description: "why archiving is halted (it waits for an operator), or null" }),
  }),
  retention: z.object({
    bodiesPrunedThrough: z.number().int(),
    recordsPrunedThrough: z.number().int(),
    prunedBodies: z.number().int(),
    prunedRecords: z.number().int(),
    lastPrunedAt: isoTime.nullable(),
    nextAt: isoTime.nullable(),
    error: z.string().nullable(),
    heldBack: z
      .object({ records: z.number().int(), seqs: z.array(z.number().int()).meta({ description: "the first 20, ascending" }) })
      .nullable()
      .meta({ description: "records pruning passed over because a hand-off of theirs is pending: kept whole (body and record) until handed; null when none" }),
    heldBackNote: z.string().nullable().meta({ description: 'the same as a sentence: "held back: N records held at seq …"' }),
  }),
  integrity: integritySchema.omit({ source: true }).meta({ description: "as GET /admin/sources/:id/integrity answers, without starting anything" }),
});

/** `POST /admin/sources/:id/integrity` body. */
export const integrityRequestBody = z.strictObject({
  full: z.boolean().default(false).meta({ description: "re-verify the whole chain (a background job) instead of the records after the checkpoint" }),
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

/** `POST /admin/replay`. */
export const replayManySchema = z.object({
  replayed: z.number().int(),
  more: z.boolean().meta({ description: "some matching dispatches are left for another call" }),
  targets: z.array(z.object({ target: z.string(), replayed: z.number().int(), remaining: z.number().int() })),
});

/** `GET /admin/sources/:id/handshakes`. */
export const handshakesSchema = z.object({
  items: z.array(
    z.object({
      id: z.number().int(),
      receivedAt: isoTime,
      sourceIp: z.string().nullable(),
      webhookId: z.string().nullable(),
      deliveryId: z.string().nullable(),
      authenticated: z.boolean(),
      outcome: z.string(),
    }),
  ),
  dropped: z.number().int().meta({ description: "older handshakes the log's bound (10,000 rows) removed" }),
});

/** `GET /admin/sources/:id/reconcile` query. */
export const reconcileReportsQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(REPORTS_KEPT).default(20) });

const count = z.number().int().nonnegative();

/** One reconciliation run: its report, or its progress while `complete` is false (docs/reconciliation.md). */
export const reconcileReportSchema = z.object({
  source: z.string(),
  id: z.number().int().meta({ description: "run number within the source" }),
  trigger: z.enum(["manual", "scheduled"]),
  startedAt: isoTime,
  finishedAt: isoTime.nullable(),
  complete: z.boolean().meta({ description: "false: the run continues in the background; the counts are those so far" }),
  outcome: z.enum(["running", "ok", "errors", "failed"]),
  lookbackFrom: isoTime.meta({ description: "history items created before this are read but never backfilled" }),
  pages: count,
  scanned: count.meta({ description: "history rows read, repeats of one delivery id included" }),
  outsideLookback: count,
  matched: count.meta({ description: "delivery ids the ledger already had (earlier backfills included)" }),
  knownPruned: count.meta({
    description: "delivery ids the ledger recorded once and retention has removed since: known, never backfilled or sent again",
  }),
  backfilled: count.meta({ description: "delivery ids missing from the ledger, recorded now and handed to the targets" }),
  recordedButFailedAtCentrePoint: count.meta({ description: "pushed deliveries the ledger has, for which CentrePoint logged only failures" }),
  skipped: count.meta({ description: "validation handshakes and the 2015 ping" }),
  errors: count,
  firstError: z.string().nullable(),
  backfilledIds: z.array(z.string()).meta({ description: "at most 1,000" }),
  failure: z.enum(["config", "upstream", "internal"]).nullable(),
  upstream: z.object({ status: z.number().int().nullable(), endpoint: z.string() }).nullable(),
});

/** `GET /admin/sources/:id/reconcile`. */
export const reconcileReportsSchema = z.object({
  source: z.string(),
  items: z.array(reconcileReportSchema).meta({ description: "newest first; the run in progress first" }),
});

/** `GET /admin/sources/:id/registration`. */
export const registrationSchema = z.object({
  source: z.string(),
  checkedAt: isoTime,
  ok: z.boolean().meta({ description: "true when there is no problem" }),
  registration: z.object({ url: z.string(), isDisabled: z.boolean(), events: z.array(z.string()) }),
  expectedUrl: z.string().nullable().meta({ description: "RELAY_PUBLIC_URL + /webhooks/<source>; null when RELAY_PUBLIC_URL is unset" }),
  problems: z.array(z.object({ code: z.enum(["url_mismatch", "disabled", "missing_event", "public_url_invalid"]), message: z.string() })),
  notes: z.array(z.string()),
});

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
