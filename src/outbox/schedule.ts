import { BATCH_BYTES, takeByBytes } from "../lib/batch";
import { type Fragment, fragment, inChunks, placeholders } from "../lib/sql";
import { pruneDueAt } from "./retention";
import { breakerOf, type MetaRow, type PayloadRow } from "./views";

/**
 * When the outbox's single alarm should run and what it takes ("one alarm, many rows"): due rows
 * earliest first, ordered targets one per subject lane, batches bounded by rows and bytes.
 */

/** How often a target held for its configuration re-reads it. */
export const HOLD_RECHECK_MS = 5 * 60_000;

/**
 * Lane rule: a row may go when the target is unordered, it has no subject, or no older row of its
 * subject is still pending or delivering (their `lane`: transitions.ts LANE). Dead and held rows do not block. `d` is the row's alias.
 */
export function laneHead(ordered: boolean): Fragment {
  if (!ordered) return fragment("1");
  return fragment(`d.subject IS NULL OR NOT EXISTS (
    SELECT 1 FROM dispatches e WHERE e.lane = d.subject AND e.state IN ('pending', 'delivering')
      AND (e.received_at < d.received_at OR (e.received_at = d.received_at AND e.seq < d.seq)))`);
}

/** Due pending rows, earliest first, at most `limit` and cut to the batch byte budget (at least one). */
export function dueRows(sql: SqlStorage, now: number, limit: number, ordered: boolean): PayloadRow[] {
  const lane = laneHead(ordered);
  const heads = sql
    .exec<{ seq: number; size: number }>(
      `SELECT d.seq, length(d.body) + length(d.envelope) + length(d.headers) AS size FROM dispatches d
       WHERE d.state = 'pending' AND d.unfiltered = 0 AND d.next_at <= ? AND (${lane.sql}) ORDER BY d.next_at, d.seq LIMIT ?`,
      now,
      ...lane.params,
      limit,
    )
    .toArray();
  const seqs = takeByBytes(heads, (h) => h.size, BATCH_BYTES).map((h) => h.seq);
  const rows = inChunks(seqs).flatMap((chunk) => sql.exec<PayloadRow>(`SELECT * FROM dispatches WHERE seq IN (${placeholders(chunk)})`, ...chunk).toArray());
  return rows.sort((a, b) => (a.next_at ?? 0) - (b.next_at ?? 0) || a.seq - b.seq);
}

/** When the alarm should next run (to send, recover, re-check a hold or prune), or null when nothing waits. `running`: a run of this instance is sending now. */
export function nextWake(sql: SqlStorage, meta: MetaRow, now: number, running: boolean): number | null {
  const send = nextSend(sql, meta, now, running);
  const due = pruneDueAt(sql, meta);
  const prune = due === null ? null : Math.max(due, now);
  return send === null ? prune : prune === null ? send : Math.min(send, prune);
}

/** A batching target waits until maxEvents rows are due, or until the earliest has been due maxWaitMs. */
function batchWake(sql: SqlStorage, max: number, waitMs: number, earliest: number, now: number): number {
  const due = sql
    .exec<{ n: number }>("SELECT COUNT(*) AS n FROM (SELECT 1 FROM dispatches WHERE state = 'pending' AND next_at <= ? LIMIT ?)", now, max)
    .one().n;
  return due >= max ? earliest : earliest + waitMs;
}

/** Whether a batch may go now: full, or its earliest row has waited maxWaitMs. `due` is sorted earliest first. */
export function batchReady(due: readonly PayloadRow[], max: number, waitMs: number, now: number): boolean {
  return due.length >= max || (due.length > 0 && (due[0]!.next_at ?? now) + waitMs <= now);
}

/** When the alarm should next run to send, recover or re-check a hold, or null. */
function nextSend(sql: SqlStorage, meta: MetaRow, now: number, running: boolean): number | null {
  const exists = (where: string) => sql.exec(`SELECT 1 FROM dispatches WHERE ${where} LIMIT 1`).toArray().length > 0;
  if (meta.held_by === "gone") return exists("state = 'pending'") ? now : null; // the alarm holds them
  if (!running && exists("state = 'delivering'")) return now; // left by an instance that stopped: recover
  const lane = laneHead(meta.ordered === 1);
  let at = sql
    .exec<{ at: number | null }>(`SELECT MIN(d.next_at) AS at FROM dispatches d WHERE d.state = 'pending' AND (${lane.sql})`, ...lane.params)
    .one().at;
  const breaker = breakerOf(meta);
  if (at !== null && breaker.probeAt !== null) at = Math.max(at, breaker.probeAt);
  if (at !== null && meta.rate_next_at !== null) at = Math.max(at, meta.rate_next_at);
  if (at !== null && meta.batch_max !== null && meta.batch_wait_ms !== null) at = batchWake(sql, meta.batch_max, meta.batch_wait_ms, at, now);
  if (meta.held_by === "config" && exists("state = 'held'")) at = Math.min(at ?? Infinity, now + HOLD_RECHECK_MS);
  if (exists("awaiting_plan = 1")) at = Math.min(at ?? Infinity, now + HOLD_RECHECK_MS); // ask the ledger again

  return at;
}
