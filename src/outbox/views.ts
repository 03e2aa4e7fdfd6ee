import { readCounters } from "../lib/counters";
import { growth, hourlyTrend, quantile, type TrendPoint } from "../lib/trends";
import { DEFAULT_RETENTION_DAYS } from "../config/schemas";
import { type BreakerState, type BreakerStatus, breakerStatus } from "./breaker";
import type { ErrorClass } from "./attempt";
import { type Fragment, fragment, joinFragments } from "../lib/sql";

/**
 * The outbox's read model: row types, the views the admin API and the dashboard see, their
 * limits, and plain read functions over an outbox's SqlStorage. Nothing here writes. A
 * *dispatch* is one event for this target (a row of `dispatches`); an *attempt* is one POST of it.
 */

export type DispatchState = "pending" | "delivering" | "delivered" | "dead" | "held" | "not_wanted";

/** Every state, in the order health() counts them. */
export const DISPATCH_STATES: readonly DispatchState[] = ["pending", "delivering", "delivered", "dead", "held", "not_wanted"];

/** One event for this target, as the admin API shows it. Times are epoch ms. */
export interface DispatchView {
  source: string;
  deliveryId: string;
  kind: string;
  subject: string | null;
  receivedAt: number;
  state: DispatchState;
  /** Attempts since the window started (hand-off, replay or resume); the full history is in attempts. */
  windowAttempts: number;
  nextAt: number | null;
  firstPlannedAt: number;
  lastError: string | null;
  deliveredAt: number | null;
  enqueuedAt: number;
  updatedAt: number;
}

/** One attempt; `in_flight` until it completes, `interrupted` when the relay stopped mid-attempt. */
export interface AttemptView {
  n: number;
  startedAt: number;
  durationMs: number | null;
  status: number | null;
  responseHeaders: Record<string, string> | null;
  responseBody: string | null;
  errorClass: ErrorClass | null;
  error: string | null;
  outcome: "in_flight" | "success" | "failure" | "interrupted";
}

/** A dispatch with its most recent attempts, oldest first. */
export interface DispatchDetail {
  dispatch: DispatchView;
  attempts: AttemptView[];
}

/** Filter of list and replayWhere; from/to bound received_at (epoch ms, from inclusive, to exclusive). */
export interface DispatchFilter {
  state?: DispatchState;
  source?: string;
  from?: number;
  to?: number;
  limit: number;
}

/** Why a target holds its dispatches: a 410 (`gone`, lifted by resume) or an unusable configuration. */
export type HeldBy = "gone" | "config";

/** What health() reports. */
export interface OutboxHealth {
  targetId: string | null;
  counts: Record<DispatchState, number>;
  /** Age of the oldest pending dispatch since it was (re)planned, ms. */
  oldestPendingAgeMs: number | null;
  heldBy: HeldBy | null;
  heldReason: string | null;
  breaker: { status: BreakerStatus; consecutiveFailures: number; probeAt: number | null };
  lastError: { at: number; message: string } | null;
  lastSuccessAt: number | null;
  /** Delivered dispatches are kept `days`; how many rows retention removed, and when it last did. `counts.delivered` includes the pruned ones. */
  retention: { days: number; prunedDispatches: number; prunedAttempts: number; lastPrunedAt: number | null };
}

/** Attempts by outcome and error class, and the accept-to-delivered latency histogram (metrics). */
export interface OutboxMetrics {
  attempts: { outcome: string; errorClass: string | null; count: number }[];
  /** Per-bucket counts over LATENCY_BUCKETS_S (the last entry is the overflow), and the sum in seconds. */
  latency: { counts: number[]; sumSeconds: number };
}

/** Rows per list page at most. */
export const MAX_LIST = 200;
/** Dispatches per bulk replay call at most. */
export const MAX_REPLAY = 1000;
/** Upper bounds (seconds) of the accept-to-delivered latency histogram. */
export const LATENCY_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400] as const;
/** Attempts shown per dispatch (the most recent). */
const ATTEMPTS_SHOWN = 100;

/** The single `meta` row. */
export type MetaRow = {
  target_id: string | null;
  ordered: number;
  held_by: HeldBy | null;
  held_reason: string | null;
  breaker_failures: number;
  breaker_probe_at: number | null;
  breaker_cooldown_ms: number;
  last_error: string | null;
  last_error_at: number | null;
  last_success_at: number | null;
  retention_days: number | null;
  last_pruned_at: number | null;
  /** rateLimit: when the next send may start, or null. */
  rate_next_at: number | null;
  /** batch: maxEvents and maxWaitMs as last read by the alarm, or null. */
  batch_max: number | null;
  batch_wait_ms: number | null;
  /** Retention's audit entry: when last written (or tried), and the pruned counters as of the last one written. */
  prune_audited_at: number | null;
  prune_audited_dispatches: number;
  prune_audited_attempts: number;
};

/** A `dispatches` row without its payload. */
export type DispatchRow = {
  seq: number;
  source: string;
  delivery_id: string;
  kind: string;
  subject: string | null;
  received_at: number;
  state: DispatchState;
  window_attempts: number;
  next_at: number | null;
  first_planned_at: number;
  last_error: string | null;
  delivered_at: number | null;
  enqueued_at: number;
  updated_at: number;
};

/** A `dispatches` row with what is sent. */
export type PayloadRow = DispatchRow & { envelope: string; body: ArrayBuffer; headers: string };

type AttemptRow = {
  n: number;
  started_at: number;
  duration_ms: number | null;
  status: number | null;
  response_headers: string | null;
  response_body: string | null;
  error_class: string | null;
  error: string | null;
  outcome: string;
};

const DISPATCH_COLUMNS =
  "seq, source, delivery_id, kind, subject, received_at, state, window_attempts, next_at, first_planned_at, last_error, delivered_at, enqueued_at, updated_at";

/** The meta row. */
export function readMeta(sql: SqlStorage): MetaRow {
  return sql.exec<MetaRow>("SELECT * FROM meta").one();
}

/** The breaker state kept in the meta row. */
export function breakerOf(m: MetaRow): BreakerState {
  return { failures: m.breaker_failures, probeAt: m.breaker_probe_at, cooldownMs: m.breaker_cooldown_ms };
}

/** The WHERE fragment of a filter (state, source, received-time range). */
export function filterWhere(f: Omit<DispatchFilter, "limit">): Fragment {
  const parts: Fragment[] = [];
  if (f.state !== undefined) parts.push(fragment("state = ?", f.state));
  if (f.source !== undefined) parts.push(fragment("source = ?", f.source));
  if (f.from !== undefined) parts.push(fragment("received_at >= ?", f.from));
  if (f.to !== undefined) parts.push(fragment("received_at < ?", f.to));
  return joinFragments(parts);
}

/** One dispatch with its most recent attempts, or null when this target never had it. */
export function getDispatch(sql: SqlStorage, source: string, deliveryId: string): DispatchDetail | null {
  const row = sql.exec<DispatchRow>(`SELECT ${DISPATCH_COLUMNS} FROM dispatches WHERE source = ? AND delivery_id = ?`, source, deliveryId).toArray()[0];
  if (!row) return null;
  const rows = sql.exec<AttemptRow>("SELECT * FROM attempts WHERE seq = ? ORDER BY n DESC LIMIT ?", row.seq, ATTEMPTS_SHOWN).toArray();
  // The latest attempt may be on the dispatch's row (in flight, or a success: transitions.ts IN_ROW).
  const inRow = sql.exec<{ attempt: string | null }>("SELECT attempt FROM dispatches WHERE seq = ?", row.seq).one().attempt;
  if (inRow !== null) rows.push(inRowAttempt(JSON.parse(inRow) as InRowAttempt));
  const attempts = rows
    .sort((a, b) => a.n - b.n)
    .slice(-ATTEMPTS_SHOWN)
    .map(rowToAttempt);
  return { dispatch: rowToDispatch(row), attempts };
}

/** The seq of a dispatch, or null. */
export function seqOf(sql: SqlStorage, source: string, deliveryId: string): number | null {
  return sql.exec<{ seq: number }>("SELECT seq FROM dispatches WHERE source = ? AND delivery_id = ?", source, deliveryId).toArray()[0]?.seq ?? null;
}

/** A page of dispatches, newest enqueued first; pass the returned cursor for the next page. */
export function listDispatches(sql: SqlStorage, filter: DispatchFilter & { cursor?: string }): { items: DispatchView[]; cursor: string | null } {
  const limit = Math.min(Math.max(filter.limit, 1), MAX_LIST);
  const before = filter.cursor && /^\d{1,15}$/.test(filter.cursor) ? Number(filter.cursor) : null;
  const where = joinFragments([filterWhere(filter), ...(before === null ? [] : [fragment("seq < ?", before)])]);
  const rows = sql
    .exec<DispatchRow>(`SELECT ${DISPATCH_COLUMNS} FROM dispatches WHERE ${where.sql} ORDER BY seq DESC LIMIT ?`, ...where.params, limit + 1)
    .toArray();
  const page = rows.slice(0, limit);
  return { items: page.map(rowToDispatch), cursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null };
}

/** Counts, backlog age, hold, breaker and last outcomes of this target at `now`. */
export function outboxHealth(sql: SqlStorage, now: number): OutboxHealth {
  const meta = readMeta(sql);
  const stored = readCounters(sql, "state:");
  const pruned = readCounters(sql, "pruned:");
  const counts = Object.fromEntries(DISPATCH_STATES.map((s) => [s, stored.get(s) ?? 0])) as Record<DispatchState, number>;
  // `state:pending` counts the delivering rows too (counters.ts): at most a batch, counted here by their index.
  counts.delivering = deliveringCount(sql);
  counts.pending -= counts.delivering;
  // Through the state index: reads the waiting rows only (the lane index holds an ordered target's rows only).
  const oldest = sql
    .exec<{ at: number | null }>("SELECT MIN(first_planned_at) AS at FROM dispatches INDEXED BY dispatches_by_state WHERE state IN ('pending', 'delivering')")
    .one().at;
  const breaker = breakerOf(meta);
  return {
    targetId: meta.target_id,
    counts,
    oldestPendingAgeMs: oldest === null ? null : Math.max(0, now - oldest),
    heldBy: meta.held_by,
    heldReason: meta.held_reason,
    breaker: { status: breakerStatus(breaker, now), consecutiveFailures: breaker.failures, probeAt: breaker.probeAt },
    lastError: meta.last_error === null ? null : { at: meta.last_error_at ?? 0, message: meta.last_error },
    lastSuccessAt: meta.last_success_at,
    retention: {
      days: meta.retention_days ?? DEFAULT_RETENTION_DAYS,
      prunedDispatches: pruned.get("dispatches") ?? 0,
      prunedAttempts: pruned.get("attempts") ?? 0,
      lastPrunedAt: meta.last_pruned_at,
    },
  };
}

/**
 * Counters for /admin/metrics, read from the counters table (counters.ts), never from history:
 * attempts by outcome and error class, and accept-to-delivered latency of each delivery as
 * per-bucket counts.
 */
export function outboxMetrics(sql: SqlStorage): OutboxMetrics {
  // Outcomes at zero (in_flight once completed) are left out, as a GROUP BY over the rows would.
  const attempts = [...readCounters(sql, "attempts:")]
    .filter(([, count]) => count !== 0)
    .map(([key, count]) => {
      const [outcome = "", errorClass = ""] = key.split(":");
      return { outcome, errorClass: errorClass === "" ? null : errorClass, count };
    });
  const latency = readCounters(sql, "latency:");
  // An attempt in flight is a delivering dispatch (not counted on write).
  const inFlight = deliveringCount(sql);
  if (inFlight > 0) attempts.push({ outcome: "in_flight", errorClass: null, count: inFlight });
  return {
    attempts,
    latency: { counts: [...LATENCY_BUCKETS_S, Infinity].map((_, i) => latency.get(String(i)) ?? 0), sumSeconds: (latency.get("sum_ms") ?? 0) / 1000 },
  };
}

/** Dispatches being delivered now (at most a batch; read through dispatches_by_state). */
function deliveringCount(sql: SqlStorage): number {
  return sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM dispatches WHERE state = 'delivering'").one().n;
}

/** A row as the admin API shows it. */
export function rowToDispatch(r: DispatchRow): DispatchView {
  return {
    source: r.source,
    deliveryId: r.delivery_id,
    kind: r.kind,
    subject: r.subject,
    receivedAt: r.received_at,
    state: r.state,
    windowAttempts: r.window_attempts,
    nextAt: r.next_at,
    firstPlannedAt: r.first_planned_at,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
    enqueuedAt: r.enqueued_at,
    updatedAt: r.updated_at,
  };
}

/** An attempt kept on its dispatch's row (transitions.ts IN_ROW). */
interface InRowAttempt {
  n: number;
  startedAt: number;
  durationMs?: number | null;
  status?: number | null;
  responseHeaders?: string | null;
  responseBody?: string | null;
  outcome: "in_flight" | "success";
}

function inRowAttempt(a: InRowAttempt): AttemptRow {
  return {
    n: a.n,
    started_at: a.startedAt,
    duration_ms: a.durationMs ?? null,
    status: a.status ?? null,
    response_headers: a.responseHeaders ?? null,
    response_body: a.responseBody ?? null,
    error_class: null,
    error: null,
    outcome: a.outcome,
  };
}

function rowToAttempt(r: AttemptRow): AttemptView {
  return {
    n: r.n,
    startedAt: r.started_at,
    durationMs: r.duration_ms,
    status: r.status,
    responseHeaders: r.response_headers === null ? null : (JSON.parse(r.response_headers) as Record<string, string>),
    responseBody: r.response_body,
    errorClass: r.error_class as ErrorClass | null,
    error: r.error,
    outcome: r.outcome as AttemptView["outcome"],
  };
}

/** This target's hourly trend, the last `hours` hours: dispatches delivered, failed attempts, and latency p50/p99 (ms, histogram bucket estimates). */
export function outboxTrend(sql: SqlStorage, hours: number, now: number): TrendPoint[] {
  const boundsMs = LATENCY_BUCKETS_S.map((s) => s * 1000);
  return hourlyTrend(sql, hours, now, {
    delivered: growth("latency:", /^\d+$/),
    failedAttempts: growth("attempts:failure:"),
    latencyP50Ms: quantile("latency:", boundsMs, 0.5),
    latencyP99Ms: quantile("latency:", boundsMs, 0.99),
  });
}
