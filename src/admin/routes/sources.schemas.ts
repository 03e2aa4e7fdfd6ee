import { z } from "zod";
import type { DownloadRow } from "../../ledger/enrichment";
import type { RawRequestView } from "../../pull/requests";
import { REPORTS_KEPT } from "../../reconcile/store";
import { isoTime, isoTimes, time } from "./shared.schemas";

/** Requests and answers of `/admin/sources/:id/...` beyond the document CRUD (routes/sources.ts). */

/** `GET /admin/sources/:id/handshakes` query. */
export const handshakesQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(50) });

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

/** A raw-data request of the relay's automatic queue (`rawRequestAnswer`). */
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
  beginUtc: isoTime,
  endUtc: isoTime,
  state: z.enum(["queued", "submitting", "active", "completed", "error", "failed", "lost", "invalid"]),
  trackingId: z.string().nullable(),
  queuedAt: isoTime,
  submittedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
  nextAt: isoTime.nullable(),
  tries: z.number().int(),
  upstreamStatus: z.string().nullable(),
  error: z.string().nullable(),
  overdue: z.boolean().meta({ description: "still active past CentrePoint's 6-hour cancel: reported" }),
  completionDeliveryId: z.string().nullable().meta({ description: "the data_retrieval_complete delivery that reported it" }),
});

/** A raw-data request as the API answers it: its times ISO 8601. */
export function rawRequestAnswer(r: RawRequestView) {
  return isoTimes(r, ["queuedAt", "submittedAt", "finishedAt", "nextAt"]);
}

/** One download through a relay file link. */
export const downloadSchema = z
  .object({
    id: z.number().int(),
    at: isoTime.meta({ description: "the latest download of the link with this outcome" }),
    firstAt: isoTime.meta({ description: "the first one" }),
    count: z.number().int().meta({ description: "downloads of the link with this outcome" }),
    targetId: z.string().meta({ description: "the target the link was issued to" }),
    fileId: z.string(),
    deliveryId: z.string().nullable(),
    clientIp: z.string().nullable().meta({ description: "CF-Connecting-IP of the latest" }),
    firstIp: z.string().nullable().meta({ description: "CF-Connecting-IP of the first" }),
    outcome: z.string().meta({ description: "redirected, or upstream_error: <CentrePoint's status>" }),
  })
  .meta({ description: "one row per link (target and file) and outcome" });

/** A download as the API answers it: its times ISO 8601. */
export function downloadAnswer(d: DownloadRow) {
  return isoTimes(d, ["at", "firstAt"]);
}

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
