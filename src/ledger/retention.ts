import type { Retention } from "../config/schemas";
import { takeByBytes } from "../lib/batch";
import { bumpCounters } from "../lib/counters";
import { sha256Hex } from "../lib/crypto";
import { DAY_MS } from "../lib/time";
import { CHAIN_START, type ChainPoint } from "./integrity";
import { COUNTER } from "./queries";

/**
 * Retention of a ledger (the source's `retention`), one bounded slice per run of the `prune` job.
 * Only records already archived to R2 are touched, oldest first (in seq order, stopping at the
 * first one too young or with a hand-off still pending):
 *
 * - `bodyDays` after receipt a record's body and envelope go. The NOT NULL columns keep an empty
 *   value (`body` = x'', `envelope` = ''), `body_pruned_at` says when, `body_bytes` how large the
 *   body was; `body_sha256` and `envelope_sha256` stay (a version 1 record's envelope digest is
 *   stored first: version 1 rows hashed the text), so the chain still verifies. Before a body goes
 *   its digest is checked: a body that does not match stops pruning (the archive has the original).
 * - `recordDays` after receipt the whole record goes, with its search keys and hand-off rows. The
 *   last removed record's seq and hash become the chain's anchor in this ledger: integrity runs
 *   start there (integrity.ts), the archive holds what came before. Its id stays in `pruned_ids`
 *   until PRUNED_ID_KEEP_MS after its receipt, so a resend is still a duplicate and reconciliation
 *   never backfills it again; expired ids go in batches, whether or not a retention is set.
 */

/** The `prune` job's state: how far each kind of pruning got. */
export interface PruneState {
  /** Every record through this seq that is still kept has had its body pruned. */
  bodiesThrough: number;
  /** The last record removed (its seq and hash: the anchor of the chain kept), or the chain's start. */
  recordsThrough: ChainPoint;
  lastPrunedAt: number | null;
}

export const PRUNE_INITIAL: PruneState = { bodiesThrough: 0, recordsThrough: CHAIN_START, lastPrunedAt: null };

/** What one slice reads at most. */
export const PRUNE_SLICE = { rows: 200, bytes: 2 * 1024 * 1024 };
/**
 * How long a removed record's id stays known after its receipt: the longest reconciliation
 * look-back (`lookbackHours` ≤ 90 days, config/schemas.ts) and 10 days' margin (CentrePoint's
 * clock against the relay's, a late resend).
 */
export const PRUNED_ID_KEEP_MS = 100 * DAY_MS;
/** Expired removed ids go in batches at most this often. */
const PRUNED_ID_BATCH_MS = 3_600_000;
/** A pending hand-off holds pruning back; look again this much later. */
const HELD_BACK_RETRY_MS = 3_600_000;

/** What a slice did, and when there is more to do (null: nothing until new records are archived, or the configuration changes). */
export interface PruneOutcome {
  state: PruneState;
  bodies: number;
  records: number;
  dueAt: number | null;
  /** Why pruning stopped (a body that does not match its digest), or null. */
  error: string | null;
}

/**
 * One slice: bodies first, then records, each among records through `archivedThrough` (never an
 * unarchived one), at most `limits` rows and bytes in all.
 */
export function pruneSlice(sql: SqlStorage, retention: Retention, state: PruneState, archivedThrough: number, now: number, limits = PRUNE_SLICE): PruneOutcome {
  let next = state;
  let bodies = 0;
  let records = 0;
  const due: number[] = [];
  const ids = expirePrunedIds(sql, now, limits.rows);
  if (ids !== null) due.push(ids);
  if (retention.bodyDays !== undefined) {
    const keep = retention.bodyDays * DAY_MS;
    const r = pruneBodies(sql, Math.max(state.bodiesThrough, state.recordsThrough.seq), archivedThrough, keep, now, limits);
    if (r.error) return { state: next, bodies: 0, records: 0, dueAt: null, error: r.error };
    next = { ...next, bodiesThrough: r.through };
    bodies = r.pruned;
    if (r.nextAt !== null) due.push(r.nextAt);
  }
  if (retention.recordDays !== undefined) {
    if (bodies >= limits.rows) due.push(now);
    else {
      const r = pruneRecords(sql, state.recordsThrough, archivedThrough, retention.recordDays * DAY_MS, now, limits.rows - bodies);
      next = { ...next, recordsThrough: r.through };
      records = r.pruned;
      if (r.nextAt !== null) due.push(r.nextAt);
    }
  }
  if (bodies + records > 0) {
    next = { ...next, lastPrunedAt: now };
    bumpCounters(sql, { [COUNTER.prunedBodies]: bodies, [COUNTER.prunedRecords]: records });
  }
  return { state: next, bodies, records, dueAt: due.length ? Math.min(...due) : null, error: null };
}

/** A pass over candidates: how far it got, and when to look again (null: nothing waits among the archived records). */
interface Pass {
  through: number;
  pruned: number;
  nextAt: number | null;
}

/** Candidates after `after` through `archivedThrough`, oldest first, with their size and whether a hand-off of theirs is pending. */
function candidates(sql: SqlStorage, after: number, archivedThrough: number, maxRows: number) {
  return sql
    .exec<{ seq: number; received_at: number; pruned: number; size: number; pending: number; record_hash: string; delivery_id: string }>(
      `SELECT d.seq, d.received_at, d.body_pruned_at IS NOT NULL AS pruned, length(d.body) + length(d.envelope) AS size, d.record_hash, d.delivery_id,
         EXISTS (SELECT 1 FROM handoffs h WHERE h.delivery_id = d.delivery_id AND h.handed_at IS NULL) AS pending
       FROM deliveries d WHERE d.seq > ? AND d.seq <= ? ORDER BY d.seq LIMIT ?`,
      after,
      archivedThrough,
      maxRows,
    )
    .toArray();
}

/**
 * Where a pass over `rows` stops: at the first record younger than `keepMs` (due when it is old
 * enough), at one with a pending hand-off (look again later), or after them all (more may follow).
 */
function stopOf(row: { received_at: number; pending: number }, keepMs: number, now: number): number | null {
  if (row.received_at > now - keepMs) return row.received_at + keepMs;
  if (row.pending) return now + HELD_BACK_RETRY_MS;
  return null;
}

function pruneBodies(
  sql: SqlStorage,
  after: number,
  archivedThrough: number,
  keepMs: number,
  now: number,
  limits: { rows: number; bytes: number },
): Pass & { error: string | null } {
  const rows = takeByBytes(candidates(sql, after, archivedThrough, limits.rows), (r) => r.size, limits.bytes);
  let through = after;
  let pruned = 0;
  for (const c of rows) {
    const stop = stopOf(c, keepMs, now);
    if (stop !== null) return { through, pruned, nextAt: stop, error: null };
    if (!c.pruned) {
      const row = sql
        .exec<{ body: ArrayBuffer; envelope: string; body_sha256: string; envelope_sha256: string | null }>(
          "SELECT body, envelope, body_sha256, envelope_sha256 FROM deliveries WHERE seq = ?",
          c.seq,
        )
        .one();
      const envelopeDigest = sha256Hex(row.envelope);
      if (sha256Hex(new Uint8Array(row.body)) !== row.body_sha256 || (row.envelope_sha256 !== null && envelopeDigest !== row.envelope_sha256))
        return { through, pruned, nextAt: null, error: `record ${c.seq} (${c.delivery_id}) does not match its digests; pruning stopped` };
      sql.exec(
        "UPDATE deliveries SET body_bytes = length(body), body = x'', envelope = '', envelope_sha256 = ?, body_pruned_at = ? WHERE seq = ?",
        row.envelope_sha256 ?? envelopeDigest,
        now,
        c.seq,
      );
      pruned++;
    }
    through = c.seq;
  }
  return { through, pruned, nextAt: through < archivedThrough ? now : null, error: null };
}

function pruneRecords(
  sql: SqlStorage,
  after: ChainPoint,
  archivedThrough: number,
  keepMs: number,
  now: number,
  maxRows: number,
): Omit<Pass, "through"> & { through: ChainPoint } {
  const chosen: ReturnType<typeof candidates> = [];
  let nextAt: number | null = null;
  for (const c of candidates(sql, after.seq, archivedThrough, maxRows)) {
    nextAt = stopOf(c, keepMs, now);
    if (nextAt !== null) break;
    chosen.push(c);
  }
  const last = chosen.at(-1);
  if (!last) return { through: after, pruned: 0, nextAt };
  // The chosen records are the contiguous run after `after` (ranges: an IN list would exceed SQLite's 100 bound parameters).
  sql.exec(
    `INSERT OR IGNORE INTO pruned_ids (delivery_id, seq, kind, received_at, duplicate_count)
     SELECT delivery_id, seq, kind, received_at, duplicate_count FROM deliveries WHERE seq > ? AND seq <= ? AND received_at >= ?`,
    after.seq,
    last.seq,
    now - PRUNED_ID_KEEP_MS,
  );
  sql.exec("DELETE FROM search_keys WHERE seq > ? AND seq <= ?", after.seq, last.seq);
  for (const table of ["handoffs", "enrichments", "downloads"])
    sql.exec(`DELETE FROM ${table} WHERE delivery_id IN (SELECT delivery_id FROM deliveries WHERE seq > ? AND seq <= ?)`, after.seq, last.seq);
  sql.exec("DELETE FROM deliveries WHERE seq > ? AND seq <= ?", after.seq, last.seq);
  if (nextAt === null && last.seq < archivedThrough) nextAt = now;
  return { through: { seq: last.seq, hash: last.record_hash }, pruned: chosen.length, nextAt };
}

/** Deletes at most `maxRows` removed ids older than PRUNED_ID_KEEP_MS; returns when to look again (null: none kept). */
function expirePrunedIds(sql: SqlStorage, now: number, maxRows: number): number | null {
  const expired = sql
    .exec(
      "DELETE FROM pruned_ids WHERE delivery_id IN (SELECT delivery_id FROM pruned_ids WHERE received_at < ? ORDER BY received_at LIMIT ?) RETURNING seq",
      now - PRUNED_ID_KEEP_MS,
      maxRows,
    )
    .toArray().length;
  if (expired >= maxRows) return now;
  const oldest = sql.exec<{ at: number | null }>("SELECT MIN(received_at) AS at FROM pruned_ids").one().at;
  return oldest === null ? null : Math.max(oldest + PRUNED_ID_KEEP_MS, now + PRUNED_ID_BATCH_MS);
}
