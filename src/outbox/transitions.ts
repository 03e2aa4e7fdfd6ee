import type { RetryPolicy, TargetConfig } from "../config/schemas";
import { addDelta, bumpCounters, type Deltas } from "../lib/counters";
import type { Fragment } from "../lib/sql";
import { inChunks, placeholders } from "../lib/sql";
import { planRetry } from "../lib/backoff";
import type { BreakerPolicy } from "../config/schemas";
import { breakerAfter, type BreakerState } from "./breaker";
import type { AttemptResult } from "./attempt";
import { attemptCounter, moveState, observeLatency, stateCounter } from "./counters";
import { targetWants } from "../config/match";
import type { HandoffItem } from "./types";
import { type AttemptView, breakerOf, type DispatchState, type HeldBy, readMeta } from "./views";

/**
 * Every change of a dispatch's state, as plain synchronous functions over an outbox's SqlStorage
 * (callers wrap them in `transactionSync` where several must be atomic). Times are epoch ms.
 *
 *             hand-off                 claim (attempt row written "in_flight")
 *   (none) ──────────────▶ pending ─────────────────────────────▶ delivering
 *                           ▲  ▲  │                                   │
 *        retry due later ───┘  │  │ target paused/unusable            ├─ 2xx ─────────────▶ delivered
 *        (backoff/Retry-After) │  ▼                                   ├─ failure, retry ──▶ pending
 *                              │ held ◀── 410 / paused / unusable ────┤
 *          resume() or config  │                                      └─ failure, past the window
 *          usable again ───────┘                                         or maxAttempts ──▶ dead
 *   delivered, dead, not_wanted ── replay ──▶ pending (fresh window, history kept)
 *   delivering (instance died mid-attempt) ── recover ──▶ pending, attempt "interrupted"
 *   pending, held, planned while the document was invalid ── filter says no ──▶ not_wanted
 *   delivering, the filter expression says no ──▶ not_wanted (its attempt dropped: nothing was sent)
 *   delivering, an expression error (error class transform) ──▶ dead at once
 *
 * A dispatch is claimed only while pending and completed only while delivering, so running any
 * step twice changes nothing twice. Every change also updates the counters (counters.ts) in the
 * same synchronous step: dispatches per state and attempts per outcome, and the latency histogram.
 */

/** What an attempt's completion needs to know about the target and the run. */
export interface CompletionPolicy {
  retry: RetryPolicy;
  breaker: BreakerPolicy;
  /** The attempt was the half-open breaker's probe. */
  probe: boolean;
  random: () => number;
}

/** One finished attempt. */
export interface Completion {
  seq: number;
  /** The attempt's number (1-based over the dispatch's history), as its claim returned it. */
  attemptN: number;
  result: AttemptResult;
  /** When the attempt finished. */
  at: number;
  /** Set when the target's filter expression did not want the dispatch: nothing was sent, the attempt is dropped and the row is not_wanted. */
  notWanted?: string;
  /** A member of a batch after its first: the batch's one request counts once for the breaker. */
  skipBreaker?: boolean;
}

/**
 * A dispatch's ordering lane (column `lane`, indexed by dispatches_by_lane while pending or
 * delivering): its subject when the target is ordered (meta.ordered, as the alarm last read it),
 * else NULL, so an unordered target's rows have no entry in that index (one fewer row written per
 * insert and per claim). Set wherever a row becomes pending, and on every pending and delivering
 * row when the target's `ordered` changes (setOrdered).
 */
const LANE = "CASE WHEN (SELECT ordered FROM meta) = 1 THEN subject END";
/** The same for a row being inserted, whose subject is the next bound parameter. */
const LANE_OF_SUBJECT = "CASE WHEN (SELECT ordered FROM meta) = 1 THEN ? END";

/** The target's `ordered` changed: stores it and gives every pending and delivering row its lane. */
export function setOrdered(sql: SqlStorage, ordered: boolean): void {
  sql.exec("UPDATE meta SET ordered = ?", ordered ? 1 : 0);
  sql.exec(`UPDATE dispatches SET lane = ${LANE} WHERE state IN ('pending', 'delivering')`);
}

/**
 * Inserts new dispatches (idempotent on (source, delivery id)); paused targets hold them at once. An
 * item for a row awaiting its enrichment plan replaces that row's payload and puts it back on.
 * Returns how many were new or replaced.
 */
export function insertDispatches(sql: SqlStorage, items: readonly HandoffItem[], now: number, paused: { reason: string | null } | null): number {
  let inserted = 0;
  let replaced = 0;
  for (const item of items) {
    const before = inserted;
    inserted += sql
      .exec(
        `INSERT INTO dispatches (source, delivery_id, kind, subject, received_at, envelope, body, headers, state, next_at, first_planned_at, last_error, enqueued_at, updated_at, unfiltered, lane)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ${LANE_OF_SUBJECT}) ON CONFLICT (source, delivery_id) DO NOTHING RETURNING seq`,
        item.source,
        item.deliveryId,
        item.kind,
        item.subject,
        item.receivedAt,
        item.envelope,
        item.body.slice().buffer,
        JSON.stringify(item.headers),
        paused ? "held" : "pending",
        paused ? null : now,
        now,
        paused ? paused.reason : null,
        now,
        now,
        item.unfiltered ? 1 : 0,
        item.subject,
      )
      .toArray().length;
    if (inserted === before && !item.unfiltered)
      replaced += sql
        .exec(
          `UPDATE dispatches SET envelope = ?, body = ?, headers = ?, state = ?, next_at = ?, first_planned_at = ?, window_attempts = 0, last_error = ?, awaiting_plan = 0, lane = ${LANE}, updated_at = ?
           WHERE source = ? AND delivery_id = ? AND awaiting_plan > 0 AND state = 'held' RETURNING seq`,
          item.envelope,
          item.body.slice().buffer,
          JSON.stringify(item.headers),
          paused ? "held" : "pending",
          paused ? null : now,
          now,
          paused ? paused.reason : null,
          now,
          item.source,
          item.deliveryId,
        )
        .toArray().length;
  }
  const deltas: Deltas = new Map();
  addDelta(deltas, stateCounter(paused ? "held" : "pending"), inserted);
  if (!paused) moveState(deltas, "held", "pending", replaced);
  bumpCounters(sql, deltas);
  return inserted + replaced;
}

/**
 * pending → delivering for each row still pending, its attempt written `in_flight` on the row
 * itself (column `attempt`, no attempts row: see IN_ROW); returns the claimed rows' attempt
 * numbers. One call claims a whole batch (one write before its fetches; one statement per 98 rows,
 * SQLite's bound-parameter limit, less the two times). A success the row still holds from before (a replayed row)
 * becomes an attempts row first. No counter changes: `state:pending` counts delivering rows too.
 * `+state` keeps the planner on the primary key rather than walking the pending backlog.
 */
export function claim(sql: SqlStorage, seqs: readonly number[], now: number): Map<number, number> {
  const claimed = new Map<number, number>();
  if (seqs.length === 0) return claimed;
  for (const chunk of inChunks(seqs, 2)) {
    sql.exec(
      `INSERT INTO attempts (seq, n, started_at, duration_ms, status, response_headers, response_body, outcome)
       SELECT seq, ${IN_ROW.n}, ${IN_ROW.startedAt}, ${IN_ROW.durationMs}, ${IN_ROW.status}, ${IN_ROW.responseHeaders}, ${IN_ROW.responseBody}, ${IN_ROW.outcome}
       FROM dispatches WHERE seq IN (${placeholders(chunk)}) AND +state = 'pending' AND attempt IS NOT NULL`,
      ...chunk,
    );
    for (const { seq, n } of sql.exec<{ seq: number; n: number }>(
      `UPDATE dispatches SET state = 'delivering', window_attempts = window_attempts + 1, attempt_count = attempt_count + 1, next_at = NULL, updated_at = ?,
         attempt = json_object('n', attempt_count + 1, 'startedAt', ?, 'outcome', 'in_flight')
       WHERE seq IN (${placeholders(chunk)}) AND +state = 'pending' RETURNING seq, attempt_count AS n`,
      now,
      now,
      ...chunk,
    ))
      claimed.set(seq, n);
  }
  return claimed;
}

/**
 * The latest attempt of a dispatch is kept on its row (column `attempt`, JSON) while it is in
 * flight and when it succeeded, so that a first-try success costs no attempts row (rows written
 * are billed); a failed, interrupted or superseded attempt is an attempts row. The JSON's fields,
 * as SQL over the row: n, startedAt, durationMs, status, responseHeaders (JSON text), responseBody, outcome.
 */
export const IN_ROW = {
  n: "json_extract(attempt, '$.n')",
  startedAt: "json_extract(attempt, '$.startedAt')",
  durationMs: "json_extract(attempt, '$.durationMs')",
  status: "json_extract(attempt, '$.status')",
  responseHeaders: "json_extract(attempt, '$.responseHeaders')",
  responseBody: "json_extract(attempt, '$.responseBody')",
  outcome: "json_extract(attempt, '$.outcome')",
} as const;

/**
 * Records a finished attempt and moves its row on: delivered, pending (retry), dead or held. A
 * row that is no longer delivering (held by a sibling's 410, recovered) only gets its attempt
 * recorded. Updates the breaker, the last error or success, and pauses the target on a 410.
 * Its counter changes are added to `deltas`, which the caller applies once for a whole batch.
 */
export function complete(sql: SqlStorage, c: Completion, policy: CompletionPolicy, deltas: Deltas): void {
  const { result, at } = c;
  if (c.notWanted !== undefined) return completeNotWanted(sql, c, c.notWanted, deltas);
  if (result.ok) {
    // One statement moves the row (only if still delivering) and keeps the attempt on it; one closes the breaker and notes the success.
    const moved = sql
      .exec<{ received_at: number }>(
        `UPDATE dispatches SET state = 'delivered', delivered_at = ?, last_error = NULL, updated_at = ?,
           attempt = json_set(attempt, '$.outcome', 'success', '$.durationMs', ?, '$.status', ?, '$.responseHeaders', ?, '$.responseBody', ?)
         WHERE seq = ? AND state = 'delivering' AND ${IN_ROW.n} = ? RETURNING received_at`,
        at,
        at,
        result.durationMs,
        result.status,
        result.headers && JSON.stringify(result.headers),
        result.body,
        c.seq,
        c.attemptN,
      )
      .toArray()[0];
    if (moved) {
      addDelta(deltas, attemptCounter("success", null));
      moveState(deltas, "delivering", "delivered");
      observeLatency(deltas, at - moved.received_at);
      noteSuccess(sql, at);
      return;
    }
  }
  writeAttemptRow(sql, c, deltas);
  if (result.ok) return;
  const row = retryState(sql, c.seq);
  if (row?.state !== "delivering") return;
  const message = result.error ?? "failed";
  noteError(sql, message, at);
  const breaker = breakerOf(readMeta(sql));
  const next = c.skipBreaker ? breaker : breakerAfter(breaker, result, at, policy.probe, policy.breaker);
  if (next !== breaker) saveBreaker(sql, next);
  if (result.status === 410) hold(sql, "gone", `target answered 410 Gone at ${new Date(at).toISOString()}; paused until resumed`, at);
  if (readMeta(sql).held_by !== null) {
    sql.exec("UPDATE dispatches SET state = 'held', last_error = ?, updated_at = ? WHERE seq = ?", message, at, c.seq);
    moveState(deltas, "delivering", "held");
    return;
  }
  // An expression error is the same on every try: dead now, with its message, until the document is fixed and it is replayed.
  const plan = result.errorClass === "transform" ? { kind: "dead" as const } : planRetry(policy.retry, row, at, result.retryAfterMs, policy.random);
  if (plan.kind === "dead") sql.exec("UPDATE dispatches SET state = 'dead', last_error = ?, updated_at = ? WHERE seq = ?", message, at, c.seq);
  else sql.exec("UPDATE dispatches SET state = 'pending', next_at = ?, last_error = ?, updated_at = ? WHERE seq = ?", plan.at, message, at, c.seq);
  moveState(deltas, "delivering", plan.kind === "dead" ? "dead" : "pending");
}

/**
 * Writes a finished attempt as an attempts row (a failure; or a success whose row is no longer
 * delivering): the attempt's own row when it has one (recovery made it `interrupted` meanwhile),
 * else a new one from the in-row attempt, which the row then drops. Counts the outcome (an in-flight
 * attempt is never counted: it is a delivering row).
 */
function writeAttemptRow(sql: SqlStorage, c: Completion, deltas: Deltas): void {
  const { result } = c;
  const outcome = result.ok ? "success" : "failure";
  const fields = [
    result.durationMs,
    result.status,
    result.headers && JSON.stringify(result.headers),
    result.body,
    result.errorClass,
    result.error,
    outcome,
  ] as const;
  const before = sql
    .exec<{ id: number; outcome: string; error_class: string | null }>(
      "SELECT id, outcome, error_class FROM attempts WHERE seq = ? AND n = ?",
      c.seq,
      c.attemptN,
    )
    .toArray()[0];
  if (before) {
    if (before.outcome !== "in_flight") addDelta(deltas, attemptCounter(before.outcome, before.error_class), -1);
    sql.exec(
      "UPDATE attempts SET duration_ms = ?, status = ?, response_headers = ?, response_body = ?, error_class = ?, error = ?, outcome = ? WHERE id = ?",
      ...fields,
      before.id,
    );
  } else {
    const startedAt = sql
      .exec<{ at: number }>(`SELECT ${IN_ROW.startedAt} AS at FROM dispatches WHERE seq = ? AND ${IN_ROW.n} = ?`, c.seq, c.attemptN)
      .toArray()[0]?.at;
    if (startedAt === undefined) return; // not this dispatch's attempt any more (it was removed)
    sql.exec(
      `INSERT INTO attempts (seq, n, started_at, duration_ms, status, response_headers, response_body, error_class, error, outcome)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      c.seq,
      c.attemptN,
      startedAt,
      ...fields,
    );
    sql.exec(`UPDATE dispatches SET attempt = NULL WHERE seq = ? AND ${IN_ROW.n} = ?`, c.seq, c.attemptN);
  }
  addDelta(deltas, attemptCounter(outcome, result.errorClass));
}

/**
 * The target answered 2xx: closes the breaker and notes the time, to the second (within a second
 * of the last noted success the row is left as it is, so a busy target's successes do not each
 * write it; a breaker that is not closed is always written).
 */
function noteSuccess(sql: SqlStorage, at: number): void {
  sql.exec(
    `UPDATE meta SET last_success_at = ?, breaker_failures = 0, breaker_probe_at = NULL, breaker_cooldown_ms = 0
     WHERE breaker_failures != 0 OR breaker_probe_at IS NOT NULL OR breaker_cooldown_ms != 0 OR last_success_at IS NULL OR last_success_at <= ?`,
    at,
    at - SUCCESS_PRECISION_MS,
  );
}

/** How stale the meta row's last success time may be (health() shows it). */
export const SUCCESS_PRECISION_MS = 1_000;

/** A claimed row the filter expression did not want: its in-flight attempt is dropped (nothing was sent) and it becomes not_wanted. */
function completeNotWanted(sql: SqlStorage, c: Completion, reason: string, deltas: Deltas): void {
  const moved = sql
    .exec(
      `UPDATE dispatches SET state = 'not_wanted', next_at = NULL, last_error = ?, attempt = NULL, attempt_count = MAX(0, attempt_count - 1), window_attempts = MAX(0, window_attempts - 1), updated_at = ?
       WHERE seq = ? AND state = 'delivering' AND ${IN_ROW.n} = ? RETURNING seq`,
      reason,
      c.at,
      c.seq,
      c.attemptN,
    )
    .toArray().length;
  moveState(deltas, "delivering", "not_wanted", moved);
}

/** Holds every pending row (never drops it) and records why; a 410 pause keeps its reason over a config hold. */
export function hold(sql: SqlStorage, by: HeldBy, reason: string, now: number): void {
  sql.exec("UPDATE meta SET held_by = ?, held_reason = ? WHERE held_by IS NOT 'gone'", by, reason);
  const why = readMeta(sql).held_reason;
  const held = sql
    .exec("UPDATE dispatches SET state = 'held', next_at = NULL, last_error = ?, updated_at = ? WHERE state = 'pending' RETURNING seq", why, now)
    .toArray().length;
  const deltas: Deltas = new Map();
  moveState(deltas, "pending", "held", held);
  bumpCounters(sql, deltas);
}

/** Held rows go back to pending with a fresh window and the hold is lifted (not those awaiting their enrichment plan); returns how many. */
export function release(sql: SqlStorage, now: number): number {
  const released = replan(sql, { sql: "state = 'held' AND awaiting_plan = 0", params: [] }, now);
  sql.exec("UPDATE meta SET held_by = NULL, held_reason = NULL");
  return released;
}

/** Rows matching `where` (never pending ones) go back to pending, due now, with a fresh window; returns how many. */
export function replan(sql: SqlStorage, where: Fragment, now: number): number {
  // The states the rows leave, counted first (an UPDATE returns only the new values).
  const deltas: Deltas = new Map();
  for (const r of sql.exec<{ state: DispatchState; n: number }>(
    `SELECT state, COUNT(*) AS n FROM dispatches WHERE ${where.sql} GROUP BY state`,
    ...where.params,
  ))
    moveState(deltas, r.state, "pending", r.n);
  const replanned = sql
    .exec(
      `UPDATE dispatches SET state = 'pending', next_at = ?, first_planned_at = ?, window_attempts = 0, last_error = NULL, updated_at = ?, lane = ${LANE} WHERE ${where.sql} RETURNING seq`,
      now,
      now,
      now,
      ...where.params,
    )
    .toArray().length;
  bumpCounters(sql, deltas);
  return replanned;
}

/** Rows left `delivering` by an instance that stopped mid-attempt go back to pending, due now; returns their seqs. */
export function recoverInterrupted(sql: SqlStorage, now: number): number[] {
  const error = "the relay stopped before the attempt completed";
  // In-flight attempts rows are written by versions before the in-row attempt (IN_ROW).
  const interrupted =
    sql.exec("UPDATE attempts SET outcome = 'interrupted', error = ? WHERE outcome = 'in_flight' RETURNING id", error).toArray().length +
    sql
      .exec(
        `INSERT INTO attempts (seq, n, started_at, outcome, error)
         SELECT seq, ${IN_ROW.n}, ${IN_ROW.startedAt}, 'interrupted', ? FROM dispatches WHERE state = 'delivering' AND ${IN_ROW.outcome} = 'in_flight' RETURNING id`,
        error,
      )
      .toArray().length;
  const seqs = sql
    .exec<{ seq: number }>(
      "UPDATE dispatches SET state = 'pending', next_at = ?, updated_at = ?, attempt = NULL WHERE state = 'delivering' RETURNING seq",
      now,
      now,
    )
    .toArray()
    .map((r) => r.seq);
  const deltas: Deltas = new Map();
  addDelta(deltas, attemptCounter("interrupted", null), interrupted);
  moveState(deltas, "delivering", "pending", seqs.length);
  bumpCounters(sql, deltas);
  return seqs;
}

/** A recovered row whose window or attempt budget is spent becomes dead (the dead rule of a failure). */
export function expireIfSpent(sql: SqlStorage, seq: number, retry: RetryPolicy, now: number, random: () => number): void {
  const row = retryState(sql, seq);
  if (row?.state !== "pending") return;
  if (planRetry(retry, row, now, 0, random).kind === "dead") {
    sql.exec(
      "UPDATE dispatches SET state = 'dead', next_at = NULL, last_error = ?, updated_at = ? WHERE seq = ?",
      "the relay stopped during the last attempt; retry window over",
      now,
      seq,
    );
    const deltas: Deltas = new Map();
    moveState(deltas, "pending", "dead");
    bumpCounters(sql, deltas);
  }
}

/** last_error of a row waiting for its enrichment plan. */
export const AWAITING_PLAN = "waiting for its enrichment: it arrived while the target's document was invalid, and is planned now";

/**
 * Rows planned while the target's document was invalid meet its filter now that it is valid:
 * wanted rows go on as usual, the rest become not_wanted (never sent, kept for the record). When
 * the target wants enrichment, a wanted row is held instead, `awaiting_plan` (it was never planned
 * for enrichment): the source's ledger hands it off again with its plan, and that item replaces it.
 */
export function applyFilter(sql: SqlStorage, config: Pick<TargetConfig, "events" | "sources" | "enrich">, now: number): void {
  const rows = sql
    .exec<{ seq: number; source: string; kind: string; state: DispatchState }>("SELECT seq, source, kind, state FROM dispatches WHERE unfiltered = 1")
    .toArray();
  const deltas: Deltas = new Map();
  for (const r of rows) {
    if (targetWants(config, r.source, r.kind) && config.enrich.length > 0) {
      const held = sql
        .exec(
          "UPDATE dispatches SET unfiltered = 0, awaiting_plan = 1, state = 'held', next_at = NULL, last_error = ?, updated_at = ? WHERE seq = ? AND state IN ('pending', 'held') RETURNING seq",
          AWAITING_PLAN,
          now,
          r.seq,
        )
        .toArray().length;
      if (held === 0) sql.exec("UPDATE dispatches SET unfiltered = 0 WHERE seq = ?", r.seq);
      else if (r.state === "pending") moveState(deltas, "pending", "held");
    } else if (targetWants(config, r.source, r.kind)) sql.exec("UPDATE dispatches SET unfiltered = 0 WHERE seq = ?", r.seq);
    else {
      const moved = sql
        .exec(
          "UPDATE dispatches SET unfiltered = 0, state = 'not_wanted', next_at = NULL, last_error = ?, updated_at = ? WHERE seq = ? AND state IN ('pending', 'held') RETURNING seq",
          `not wanted by the target's filter (events ${JSON.stringify(config.events)}, sources ${JSON.stringify(config.sources)}): it arrived while the document was invalid`,
          now,
          r.seq,
        )
        .toArray().length;
      if (moved > 0) moveState(deltas, r.state, "not_wanted");
    }
  }
  bumpCounters(sql, deltas);
}

/** Rows waiting for their enrichment plan and not asked for yet, by source: at most 500, oldest first. */
export function awaitingPlans(sql: SqlStorage): Map<string, string[]> {
  const rows = sql
    .exec<{ source: string; delivery_id: string }>("SELECT source, delivery_id FROM dispatches WHERE awaiting_plan = 1 ORDER BY seq LIMIT 500")
    .toArray();
  const bySource = new Map<string, string[]>();
  for (const r of rows) bySource.set(r.source, [...(bySource.get(r.source) ?? []), r.delivery_id]);
  return bySource;
}

/**
 * Marks `ids` of `source` asked for their plan (`awaiting_plan` 2: the ledger's hand-off replaces
 * them). `missing`: ids the ledger no longer holds (retention), which go out as they are rather
 * than never.
 */
export function markPlansAsked(sql: SqlStorage, source: string, ids: readonly string[], missing: readonly string[], now: number): void {
  for (const chunk of inChunks(ids, 1))
    sql.exec(`UPDATE dispatches SET awaiting_plan = 2 WHERE source = ? AND awaiting_plan = 1 AND delivery_id IN (${placeholders(chunk)})`, source, ...chunk);
  for (const chunk of inChunks(missing, 1)) {
    sql.exec(`UPDATE dispatches SET awaiting_plan = 0 WHERE source = ? AND awaiting_plan > 0 AND delivery_id IN (${placeholders(chunk)})`, source, ...chunk);
    replan(sql, { sql: `source = ? AND state = 'held' AND delivery_id IN (${placeholders(chunk)})`, params: [source, ...chunk] }, now);
  }
}

/** Logs a `config` failure for a row that was due but cannot be sent (a named secret is missing, ...). */
export function recordConfigFailure(sql: SqlStorage, seq: number, message: string, now: number): void {
  const n = sql.exec<{ n: number }>("UPDATE dispatches SET attempt_count = attempt_count + 1 WHERE seq = ? RETURNING attempt_count AS n", seq).one().n;
  const id = insertAttempt(sql, seq, n, now, "failure");
  sql.exec("UPDATE attempts SET duration_ms = 0, error_class = 'config', error = ? WHERE id = ?", message, id);
  bumpCounters(sql, { [attemptCounter("failure", "config")]: 1 });
}

/** Stores the breaker state. */
export function saveBreaker(sql: SqlStorage, b: BreakerState): void {
  sql.exec("UPDATE meta SET breaker_failures = ?, breaker_probe_at = ?, breaker_cooldown_ms = ?", b.failures, b.probeAt, b.cooldownMs);
}

/** Records the target's last error. */
export function noteError(sql: SqlStorage, message: string, now: number): void {
  sql.exec("UPDATE meta SET last_error = ?, last_error_at = ?", message.slice(0, 500), now);
}

/** What the dead rule reads of a row: its state and its retry window so far; undefined when gone. */
function retryState(sql: SqlStorage, seq: number): { state: string; windowAttempts: number; firstPlannedAt: number } | undefined {
  return sql
    .exec<{ state: string; windowAttempts: number; firstPlannedAt: number }>(
      "SELECT state, window_attempts AS windowAttempts, first_planned_at AS firstPlannedAt FROM dispatches WHERE seq = ?",
      seq,
    )
    .toArray()[0];
}

/** Writes attempt `n` (1-based over the dispatch's whole history) of a dispatch; returns its id. */
function insertAttempt(sql: SqlStorage, seq: number, n: number, now: number, outcome: AttemptView["outcome"]): number {
  return sql.exec<{ id: number }>("INSERT INTO attempts (seq, n, started_at, outcome) VALUES (?, ?, ?, ?) RETURNING id", seq, n, now, outcome).one().id;
}

/** A claimed row whose attempt was never sent (the run stopped first: a sibling's 410, or the breaker opened): back to pending, or held when the target now is. */
export function unclaim(sql: SqlStorage, seq: number, attemptN: number, now: number): void {
  const deltas: Deltas = new Map();
  const heldBy = readMeta(sql).held_by;
  const to = heldBy === null ? "pending" : "held";
  const moved = sql
    .exec(
      `UPDATE dispatches SET state = ?, next_at = ?, attempt = NULL, window_attempts = MAX(0, window_attempts - 1), attempt_count = MAX(0, attempt_count - 1), updated_at = ?
       WHERE seq = ? AND state = 'delivering' AND ${IN_ROW.n} = ? RETURNING seq`,
      to,
      heldBy === null ? now : null,
      now,
      seq,
      attemptN,
    )
    .toArray().length;
  moveState(deltas, "delivering", to, moved);
  bumpCounters(sql, deltas);
}
