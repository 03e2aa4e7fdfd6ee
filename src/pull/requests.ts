import { bumpCounter } from "../lib/counters";
/**
 * The queue of automatic raw-data requests of one CentrePoint API client (docs/pull.md,
 * "Automatic raw-data requests"), as plain functions over the CentrePointGateway's SqlStorage.
 * CentrePoint allows 10 active requests per client; the rest wait here, durably, in order.
 *
 *   trigger ──▶ queued ──(a slot is free)──▶ submitting ──▶ active ──(webhook or poll)──▶ completed | error
 *                  ▲                            │  │            └─(still active 24 h after submission)──▶ lost
 *                  └── retryable failure, or ───┘  └─ refused for good (a 4xx) ──▶ failed
 *                      the 10-active limit
 *   a trigger without a usable subject or range ──▶ invalid
 *
 * A row is unique per (study, subject, format, range): a duplicate or replayed trigger adds only a
 * row to `raw_triggers`. Times are epoch ms.
 */
import { inChunks, placeholders } from "../lib/sql";
import { GT3X_MAX_RANGE_MS } from "../providers/centrepoint/api/schemas";
import { parseTimestamp } from "../providers/centrepoint/normalize";
import type { RawFileFormat } from "./plan";

/** CentrePoint's cap on active data-retrieval requests per client. */
export const MAX_ACTIVE_REQUESTS = 10;
/** First poll of a submitted request, and the interval between polls. */
export const POLL_EVERY_MS = 10 * 60_000;
/** A request still active this long after submission is reported as overdue (CentrePoint cancels after 6 h). */
export const OVERDUE_AFTER_MS = 6.5 * 3_600_000;
/** A request still active this long after submission is given up (`lost`) and its slot freed. */
export const LOST_AFTER_MS = 24 * 3_600_000;
/** Wait after CentrePoint refused a submission because 10 requests are active (some outside this queue). */
export const LIMIT_RETRY_MS = 60_000;
/** A `submitting` row older than this (its instance died mid-request) is queued again. */
export const SUBMIT_RECOVERY_MS = 5 * 60_000;
/** Most requests one trigger makes; a longer split (a device clock reset) leaves the rest as one `invalid` request. */
export const MAX_SPLIT_PARTS = 100;
/** Finished requests kept this long. */
export const FINISHED_KEPT_MS = 90 * 86_400_000;

/** What starts requests: one raw_processing.completed event. */
export interface RawTrigger {
  deliveryId: string;
  studyId: string | null;
  subjectId: string | null;
  fileFormat: RawFileFormat;
  /** The event's min and max event timestamps (normalized UTC instants), or null when absent. */
  minEventTimestamp: string | null;
  maxEventTimestamp: string | null;
}

/** A raw-data request as the admin API shows it. */
export interface RawRequestView {
  id: number;
  source: string;
  triggerDeliveryId: string;
  /** Every delivery that asked for it (the first, then duplicates and replays). */
  triggeredBy: string[];
  part: number;
  parts: number;
  studyId: string;
  subjectId: string;
  fileFormat: string;
  beginUtc: string;
  endUtc: string;
  state: string;
  trackingId: string | null;
  queuedAt: number;
  submittedAt: number | null;
  finishedAt: number | null;
  nextAt: number | null;
  tries: number;
  upstreamStatus: string | null;
  error: string | null;
  overdue: boolean;
  completionDeliveryId: string | null;
}

/** States that hold one of CentrePoint's 10 slots. */
const SLOT_STATES = "('submitting', 'active')";

/**
 * Consecutive ranges of at most `maxMs` covering [begin, end] (epoch ms); one range when it fits.
 * Each part starts where the previous ended.
 */
export function splitRange(begin: number, end: number, maxMs: number): { begin: number; end: number }[] {
  if (end - begin <= maxMs) return [{ begin, end }];
  const parts: { begin: number; end: number }[] = [];
  for (let from = begin; from < end && parts.length < 10_000; from += maxMs) parts.push({ begin: from, end: Math.min(from + maxMs, end) });
  return parts;
}

/** ISO-8601 UTC with milliseconds. */
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Queues the requests of one trigger: its range (split for gt3x past 15 days, at most
 * MAX_SPLIT_PARTS parts), idempotent on (study, subject, format, range). A trigger without a subject
 * or a usable range becomes one `invalid` row, reported; so does the rest of a split past
 * MAX_SPLIT_PARTS parts. Returns the requests it names.
 */
export function enqueueTrigger(sql: SqlStorage, source: string, t: RawTrigger, now: number): RawRequestView[] {
  const begin = t.minEventTimestamp === null ? null : parseTimestamp(t.minEventTimestamp);
  const end = t.maxEventTimestamp === null ? null : parseTimestamp(t.maxEventTimestamp);
  let problem: string | null = null;
  if (t.studyId === null || t.subjectId === null) problem = "the event names no study or subject";
  else if (!begin?.ok || !end?.ok) problem = "the event has no usable min_event_timestamp and max_event_timestamp";
  else if (end.value.epochMs < begin.value.epochMs) problem = "the event's max_event_timestamp is before its min_event_timestamp";
  const ids: number[] = [];
  if (problem !== null || !begin?.ok || !end?.ok) {
    ids.push(
      insertRequest(sql, source, t, { begin: t.minEventTimestamp ?? "", end: t.maxEventTimestamp ?? "" }, 1, 1, now, {
        state: "invalid",
        error: `not requested: ${problem}`,
      }),
    );
  } else {
    const ranges =
      t.fileFormat === "gt3x"
        ? splitRange(begin.value.epochMs, end.value.epochMs, GT3X_MAX_RANGE_MS)
        : [{ begin: begin.value.epochMs, end: end.value.epochMs }];
    const made = ranges.slice(0, MAX_SPLIT_PARTS);
    const parts = ranges.length > MAX_SPLIT_PARTS ? MAX_SPLIT_PARTS + 1 : ranges.length;
    made.forEach((r, i) => ids.push(insertRequest(sql, source, t, { begin: iso(r.begin), end: iso(r.end) }, i + 1, parts, now, null)));
    if (ranges.length > MAX_SPLIT_PARTS) {
      const rest = { begin: iso(made[made.length - 1]!.end), end: iso(end.value.epochMs) };
      const error =
        `not requested: the range splits into ${ranges.length} parts of 15 days and at most ${MAX_SPLIT_PARTS} are requested per event ` +
        `(a device clock reset?); ${rest.begin} to ${rest.end} was not requested`;
      ids.push(insertRequest(sql, source, t, rest, parts, parts, now, { state: "invalid", error }));
    }
  }
  for (const id of ids) sql.exec("INSERT OR IGNORE INTO raw_triggers (source, delivery_id, request_id, at) VALUES (?, ?, ?, ?)", source, t.deliveryId, id, now);
  return inChunks([...new Set(ids)].sort((a, b) => a - b)).flatMap((chunk) => viewsOf(sql, `WHERE r.id IN (${placeholders(chunk)}) ORDER BY r.id`, chunk));
}

/** Inserts one request (or finds the one for the same subject, format and range); returns its id. */
function insertRequest(
  sql: SqlStorage,
  source: string,
  t: RawTrigger,
  range: { begin: string; end: string },
  part: number,
  parts: number,
  now: number,
  finished: { state: string; error: string } | null,
): number {
  const inserted = sql
    .exec<{ id: number }>(
      `INSERT INTO raw_requests (source, trigger_delivery_id, part, parts, study_id, subject_id, file_format, begin_utc, end_utc, state, queued_at, next_at, finished_at, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (study_id, subject_id, file_format, begin_utc, end_utc) DO NOTHING RETURNING id`,
      source,
      t.deliveryId,
      part,
      parts,
      t.studyId ?? "",
      t.subjectId ?? "",
      t.fileFormat,
      range.begin,
      range.end,
      finished?.state ?? "queued",
      now,
      finished ? null : now,
      finished ? now : null,
      finished?.error ?? null,
    )
    .toArray()[0];
  if (inserted) {
    bumpCounter(sql, finished ? `raw:${finished.state}` : "raw:queued");
    return inserted.id;
  }
  return sql
    .exec<{ id: number }>(
      "SELECT id FROM raw_requests WHERE study_id = ? AND subject_id = ? AND file_format = ? AND begin_utc = ? AND end_utc = ?",
      t.studyId ?? "",
      t.subjectId ?? "",
      t.fileFormat,
      range.begin,
      range.end,
    )
    .one().id;
}

/** Requests in a slot (submitting or active). */
export function activeCount(sql: SqlStorage): number {
  return sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM raw_requests WHERE state IN ${SLOT_STATES}`).one().n;
}

/** Queued requests due for submission, oldest first. */
export function dueQueued(sql: SqlStorage, now: number, limit: number): RawRequestView[] {
  if (limit <= 0) return [];
  return viewsOf(sql, "WHERE r.state = 'queued' AND r.next_at <= ? ORDER BY r.id LIMIT ?", [now, limit]);
}

/** Active requests whose poll is due. */
export function duePolls(sql: SqlStorage, now: number, limit: number): RawRequestView[] {
  return viewsOf(sql, "WHERE r.state = 'active' AND r.next_at <= ? ORDER BY r.next_at LIMIT ?", [now, limit]);
}

/** queued → submitting (written before the POST, so a crash mid-request is visible and recovered). */
export function markSubmitting(sql: SqlStorage, id: number, now: number): void {
  sql.exec("UPDATE raw_requests SET state = 'submitting', submitted_at = ?, tries = tries + 1, next_at = NULL WHERE id = ? AND state = 'queued'", now, id);
}

/** submitting → active with CentrePoint's tracking id; first poll after POLL_EVERY_MS. */
export function markActive(sql: SqlStorage, id: number, trackingId: string, status: string, now: number): void {
  sql.exec(
    "UPDATE raw_requests SET state = 'active', tracking_id = ?, upstream_status = ?, next_at = ?, error = NULL WHERE id = ?",
    trackingId.toLowerCase(),
    status,
    now + POLL_EVERY_MS,
    id,
  );
}

/** submitting → queued again at `at`, with why. */
export function markRequeued(sql: SqlStorage, id: number, at: number, error: string): void {
  sql.exec("UPDATE raw_requests SET state = 'queued', next_at = ?, error = ? WHERE id = ?", at, error.slice(0, 500), id);
}

/** A request ends (webhook, poll, refusal, give-up): frees its slot. Only a request not already finished changes. Returns whether it did. */
export function markFinished(
  sql: SqlStorage,
  id: number,
  state: "completed" | "error" | "failed" | "lost",
  now: number,
  detail: { status?: string | null; error?: string | null },
): boolean {
  const changed = sql.exec(
    `UPDATE raw_requests SET state = ?, finished_at = ?, next_at = NULL, upstream_status = COALESCE(?, upstream_status), error = ?
     WHERE id = ? AND state IN ('queued', 'submitting', 'active')`,
    state,
    now,
    detail.status ?? null,
    detail.error?.slice(0, 500) ?? null,
    id,
  ).rowsWritten;
  if (changed > 0) bumpCounter(sql, `raw:${state}`);
  return changed > 0;
}

/** An active request polled: still active; next poll later, reported once when overdue. Returns whether it just became overdue. */
export function markPolled(sql: SqlStorage, r: RawRequestView, status: string, now: number): boolean {
  const overdue = !r.overdue && r.submittedAt !== null && now - r.submittedAt >= OVERDUE_AFTER_MS;
  sql.exec("UPDATE raw_requests SET upstream_status = ?, next_at = ?, overdue = overdue OR ? WHERE id = ?", status, now + POLL_EVERY_MS, overdue ? 1 : 0, r.id);
  if (overdue) bumpCounter(sql, "raw:overdue");
  return overdue;
}

/** Requests left `submitting` by an instance that died mid-request go back to the queue (CentrePoint may then see them twice). */
export function recoverSubmitting(sql: SqlStorage, now: number): number {
  return sql.exec(
    "UPDATE raw_requests SET state = 'queued', next_at = ?, error = 'the relay restarted while submitting; submitted again' WHERE state = 'submitting' AND submitted_at < ?",
    now,
    now - SUBMIT_RECOVERY_MS,
  ).rowsWritten;
}

/** The request with this tracking id, or null. */
export function requestByTracking(sql: SqlStorage, trackingId: string): RawRequestView | null {
  return viewsOf(sql, "WHERE r.tracking_id = ?", [trackingId.toLowerCase()])[0] ?? null;
}

/** Notes the data_retrieval_complete delivery that reported a request (the first one). */
export function noteCompletionDelivery(sql: SqlStorage, id: number, deliveryId: string): void {
  sql.exec("UPDATE raw_requests SET completion_delivery_id = COALESCE(completion_delivery_id, ?) WHERE id = ?", deliveryId, id);
}

/** Requests a delivery triggered (first or again) or whose completion it reported. */
export function requestsOfDelivery(sql: SqlStorage, source: string, deliveryId: string): RawRequestView[] {
  return viewsOf(
    sql,
    `WHERE r.id IN (SELECT request_id FROM raw_triggers WHERE source = ? AND delivery_id = ?) OR r.completion_delivery_id = ? ORDER BY r.id`,
    [source, deliveryId, deliveryId],
  );
}

/** Requests of a source, newest first, optionally in one state. */
export function requestsOfSource(sql: SqlStorage, source: string, filter: { state?: string; limit: number }): RawRequestView[] {
  const limit = Math.max(1, Math.min(500, Math.floor(filter.limit) || 50));
  return filter.state === undefined
    ? viewsOf(sql, "WHERE r.source = ? ORDER BY r.id DESC LIMIT ?", [source, limit])
    : viewsOf(sql, "WHERE r.source = ? AND r.state = ? ORDER BY r.id DESC LIMIT ?", [source, filter.state, limit]);
}

/** Reported requests (ended in error, refused, lost, invalid, or overdue), newest first. */
export function reportedRequests(sql: SqlStorage, limit: number): RawRequestView[] {
  return viewsOf(sql, "WHERE r.state IN ('error', 'failed', 'lost', 'invalid') OR r.overdue = 1 ORDER BY r.id DESC LIMIT ?", [limit]);
}

/** Queued and active counts now, and counters of every state ever entered. */
export function requestCounts(sql: SqlStorage): { queued: number; active: number; totals: Record<string, number> } {
  const now = sql
    .exec<{ queued: number; active: number }>(
      `SELECT (SELECT COUNT(*) FROM raw_requests WHERE state = 'queued') AS queued, (SELECT COUNT(*) FROM raw_requests WHERE state IN ${SLOT_STATES}) AS active`,
    )
    .one();
  const totals = sql.exec<{ name: string; value: number }>("SELECT name, value FROM counters WHERE name LIKE 'raw:%'").toArray();
  return { ...now, totals: Object.fromEntries(totals.map((t) => [t.name.slice(4), t.value])) };
}

/** When the queue next needs the alarm: a due submission (only while a slot is free) or a poll; null when nothing waits. */
export function nextQueueWake(sql: SqlStorage): number | null {
  const free = activeCount(sql) < MAX_ACTIVE_REQUESTS;
  const row = sql
    .exec<{ poll: number | null; submit: number | null; recover: number | null }>(
      `SELECT (SELECT MIN(next_at) FROM raw_requests WHERE state = 'active') AS poll,
              (SELECT MIN(next_at) FROM raw_requests WHERE state = 'queued') AS submit,
              (SELECT MIN(submitted_at) FROM raw_requests WHERE state = 'submitting') AS recover`,
    )
    .one();
  const times = [row.poll, free ? row.submit : null, row.recover === null ? null : row.recover + SUBMIT_RECOVERY_MS].filter((t): t is number => t !== null);
  return times.length === 0 ? null : Math.min(...times);
}

/** Deletes finished requests older than FINISHED_KEPT_MS (at most `limit` per call). */
export function pruneRequests(sql: SqlStorage, now: number, limit = 500): number {
  const old = sql
    .exec<{ id: number }>(
      "SELECT id FROM raw_requests WHERE finished_at IS NOT NULL AND finished_at < ? ORDER BY finished_at LIMIT ?",
      now - FINISHED_KEPT_MS,
      limit,
    )
    .toArray()
    .map((r) => r.id);
  let deleted = 0;
  for (const chunk of inChunks(old)) {
    sql.exec(`DELETE FROM raw_triggers WHERE request_id IN (${placeholders(chunk)})`, ...chunk);
    deleted += sql.exec(`DELETE FROM raw_requests WHERE id IN (${placeholders(chunk)})`, ...chunk).rowsWritten;
  }
  return deleted;
}

function viewsOf(sql: SqlStorage, where: string, params: SqlStorageValue[]): RawRequestView[] {
  return sql
    .exec(
      `SELECT r.*, (SELECT json_group_array(delivery_id) FROM (SELECT delivery_id FROM raw_triggers t WHERE t.request_id = r.id ORDER BY t.at, t.delivery_id)) AS triggered_by
       FROM raw_requests r ${where}`,
      ...params,
    )
    .toArray()
    .map(rowToRequest);
}

function rowToRequest(r: Record<string, SqlStorageValue>): RawRequestView {
  return {
    id: r.id as number,
    source: r.source as string,
    triggerDeliveryId: r.trigger_delivery_id as string,
    triggeredBy: JSON.parse(r.triggered_by as string) as string[],
    part: r.part as number,
    parts: r.parts as number,
    studyId: r.study_id as string,
    subjectId: r.subject_id as string,
    fileFormat: r.file_format as string,
    beginUtc: r.begin_utc as string,
    endUtc: r.end_utc as string,
    state: r.state as string,
    trackingId: r.tracking_id as string | null,
    queuedAt: r.queued_at as number,
    submittedAt: r.submitted_at as number | null,
    finishedAt: r.finished_at as number | null,
    nextAt: r.next_at as number | null,
    tries: r.tries as number,
    upstreamStatus: r.upstream_status as string | null,
    error: r.error as string | null,
    overdue: r.overdue === 1,
    completionDeliveryId: r.completion_delivery_id as string | null,
  };
}
