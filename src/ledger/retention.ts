import type { Retention } from "../config/schemas";
import { takeByBytes } from "../lib/batch";
import { bumpCounters } from "../lib/counters";
import { sha256Hex } from "../lib/crypto";
import { inChunks, placeholders } from "../lib/sql";
import { DAY_MS } from "../lib/time";
import { CHAIN_START, type ChainPoint } from "./integrity";
import { COUNTER } from "./queries";

/**
 * Retention of a ledger (the source's `retention`), one bounded slice per run of the `prune` job.
 * Only records already archived to R2 are touched, oldest first (in seq order, stopping at the
 * first one too young). A record with a hand-off still pending is *held back*: passed over, kept
 * whole (body and record, so it can still be handed out) and listed in the state (at most
 * HELD_CAP; pruning waits at the next one beyond that); the list is looked at again hourly, and a
 * record no longer pending gets what the passes did to the records around it:
 *
 * - `bodyDays` after receipt a record's body and envelope go. The NOT NULL columns keep an empty
 *   value (`body` = x'', `envelope` = ''), `body_pruned_at` says when, `body_bytes` how large the
 *   body was; `body_sha256` and `envelope_sha256` stay (a version 1 record's envelope digest is
 *   stored first: version 1 rows hashed the text), so the chain still verifies. Before a body goes
 *   its digest is checked: a body that does not match stops pruning (the archive has the original).
 * - `recordDays` after receipt the whole record goes, with its search keys and hand-off rows. The
 *   last record removed or held back becomes the chain's anchor in this ledger (its seq and hash):
 *   integrity runs and exports start after it (integrity.ts), the archive holds what came before
 *   (a record held below the anchor stays readable and can be handed out, outside the chain checked). Its id stays in `pruned_ids`
 *   until PRUNED_ID_KEEP_MS after its receipt, so a resend is still a duplicate and reconciliation
 *   never backfills it again; expired ids go in batches, whether or not a retention is set.
 */

/** The `prune` job's state: how far each kind of pruning got. */
export interface PruneState {
  /** Every record through this seq that is still kept has had its body pruned, but the held ones. */
  bodiesThrough: number;
  /** The last record removed or held back (its seq and hash: the anchor of the chain kept), or the chain's start. */
  recordsThrough: ChainPoint;
  lastPrunedAt: number | null;
  /** Seqs of records passed over because a hand-off of theirs was pending (kept whole), ascending; absent in older states. */
  held?: number[];
  /** When the held records were last looked at again. */
  heldCheckedAt?: number | null;
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
/** Held-back records are looked at again this often. */
const HELD_BACK_RETRY_MS = 3_600_000;
/** Held-back records listed at most; pruning waits at the next one with a pending hand-off beyond that. */
export const HELD_CAP = 1000;

/** Held-back seqs the lifecycle status lists at most. */
const HELD_SHOWN = 20;

/** The lifecycle status of held-back records: how many, the first seqs, and the sentence; nulls when none. */
export function heldBackStatus(state: PruneState): { heldBack: { records: number; seqs: number[] } | null; heldBackNote: string | null } {
  const held = state.held ?? [];
  if (held.length === 0) return { heldBack: null, heldBackNote: null };
  const seqs = held.slice(0, HELD_SHOWN);
  const more = held.length > seqs.length ? ` and ${held.length - seqs.length} more` : "";
  const cap = held.length >= HELD_CAP ? `; at ${HELD_CAP} held, pruning waits at the next one` : "";
  return {
    heldBack: { records: held.length, seqs },
    heldBackNote: `held back: ${held.length} record${held.length === 1 ? "" : "s"} held at seq ${seqs.join(", ")}${more} (a hand-off is pending; it keeps its body and record until it is handed${cap})`,
  };
}

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
  let next: PruneState = { ...state, held: state.held ?? [], heldCheckedAt: state.heldCheckedAt ?? null };
  let bodies = 0;
  let records = 0;
  const due: number[] = [];
  const ids = expirePrunedIds(sql, now, limits.rows);
  if (ids !== null) due.push(ids);
  if (next.held!.length > 0 && now >= (next.heldCheckedAt ?? 0) + HELD_BACK_RETRY_MS) {
    const r = releaseHeld(sql, next, now);
    if (r.error) return { state: next, bodies: 0, records: 0, dueAt: null, error: r.error };
    next = { ...next, held: r.held, heldCheckedAt: now };
    bodies += r.bodies;
    records += r.records;
  }
  const held = new Set(next.held);
  if (retention.bodyDays !== undefined) {
    const keep = retention.bodyDays * DAY_MS;
    const r = pruneBodies(sql, Math.max(next.bodiesThrough, next.recordsThrough.seq), archivedThrough, keep, now, limits, held);
    if (r.error) return { state: next, bodies: 0, records: 0, dueAt: null, error: r.error };
    next = { ...next, bodiesThrough: r.through };
    bodies += r.pruned;
    if (r.nextAt !== null) due.push(r.nextAt);
  }
  if (retention.recordDays !== undefined) {
    if (bodies >= limits.rows) due.push(now);
    else {
      const r = pruneRecords(sql, next.recordsThrough, archivedThrough, retention.recordDays * DAY_MS, now, limits.rows - bodies, held);
      next = { ...next, recordsThrough: r.through };
      records += r.pruned;
      if (r.nextAt !== null) due.push(r.nextAt);
    }
  }
  next = { ...next, held: [...held].sort((a, b) => a - b) };
  if (next.held!.length > 0) due.push(Math.max(now, (next.heldCheckedAt ?? now) + HELD_BACK_RETRY_MS));
  if (bodies + records > 0) {
    next = { ...next, lastPrunedAt: now };
    bumpCounters(sql, { [COUNTER.prunedBodies]: bodies, [COUNTER.prunedRecords]: records });
  }
  return { state: next, bodies, records, dueAt: due.length ? Math.min(...due) : null, error: null };
}

/**
 * Held-back records looked at again: one still pending stays held; one handed since is removed
 * when the records pass went past it, else has its body pruned when the bodies pass did (then it
 * is an ordinary record to the passes), else it is no longer listed.
 */
function releaseHeld(sql: SqlStorage, state: PruneState, now: number): { held: number[]; bodies: number; records: number; error: string | null } {
  const rows = new Map(
    inChunks(state.held!).flatMap((chunk) =>
      sql
        .exec<{ seq: number; pruned: number; pending: number; delivery_id: string }>(
          `SELECT d.seq, d.body_pruned_at IS NOT NULL AS pruned, d.delivery_id,
             EXISTS (SELECT 1 FROM handoffs h WHERE h.delivery_id = d.delivery_id AND h.handed_at IS NULL) AS pending
           FROM deliveries d WHERE d.seq IN (${placeholders(chunk)})`,
          ...chunk,
        )
        .toArray()
        .map((r) => [r.seq, r] as const),
    ),
  );
  const held: number[] = [];
  let bodies = 0;
  let records = 0;
  for (const seq of state.held!) {
    const row = rows.get(seq);
    if (!row) continue;
    if (row.pending) held.push(seq);
    else if (seq <= state.recordsThrough.seq) {
      removeRecords(sql, seq - 1, seq, now);
      records++;
    } else if (seq <= state.bodiesThrough && !row.pruned) {
      const error = pruneBody(sql, seq, row.delivery_id, now);
      if (error) return { held: state.held!, bodies: 0, records: 0, error };
      bodies++;
    }
  }
  return { held, bodies, records, error: null };
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

/** When a record younger than `keepMs` is old enough (a pass stops there), or null when it is old enough now. */
function tooYoung(row: { received_at: number }, keepMs: number, now: number): number | null {
  return row.received_at > now - keepMs ? row.received_at + keepMs : null;
}

/**
 * Whether a pass may go past a record with a pending hand-off: it is held back (listed in `held`)
 * while fewer than HELD_CAP are; else the pass stops at it (looked at again with the held ones).
 */
function holdBack(held: Set<number>, seq: number): boolean {
  if (held.has(seq)) return true;
  if (held.size >= HELD_CAP) return false;
  held.add(seq);
  return true;
}

function pruneBodies(
  sql: SqlStorage,
  after: number,
  archivedThrough: number,
  keepMs: number,
  now: number,
  limits: { rows: number; bytes: number },
  held: Set<number>,
): Pass & { error: string | null } {
  const rows = takeByBytes(candidates(sql, after, archivedThrough, limits.rows), (r) => r.size, limits.bytes);
  let through = after;
  let pruned = 0;
  for (const c of rows) {
    const stop = tooYoung(c, keepMs, now);
    if (stop !== null) return { through, pruned, nextAt: stop, error: null };
    if (c.pending) {
      if (!holdBack(held, c.seq)) return { through, pruned, nextAt: now + HELD_BACK_RETRY_MS, error: null };
    } else if (!c.pruned) {
      const error = pruneBody(sql, c.seq, c.delivery_id, now);
      if (error) return { through, pruned, nextAt: null, error };
      pruned++;
    }
    through = c.seq;
  }
  return { through, pruned, nextAt: through < archivedThrough ? now : null, error: null };
}

/**
 * Prunes one record's body and envelope, their digests kept (a version 1 record's envelope digest
 * stored first); returns why not when the stored body or envelope no longer matches its digest.
 */
function pruneBody(sql: SqlStorage, seq: number, deliveryId: string, now: number): string | null {
  const row = sql
    .exec<{ body: ArrayBuffer; envelope: string; body_sha256: string; envelope_sha256: string | null }>(
      "SELECT body, envelope, body_sha256, envelope_sha256 FROM deliveries WHERE seq = ?",
      seq,
    )
    .one();
  const envelopeDigest = sha256Hex(row.envelope);
  if (sha256Hex(new Uint8Array(row.body)) !== row.body_sha256 || (row.envelope_sha256 !== null && envelopeDigest !== row.envelope_sha256))
    return `record ${seq} (${deliveryId}) does not match its digests; pruning stopped`;
  sql.exec(
    "UPDATE deliveries SET body_bytes = length(body), body = x'', envelope = '', envelope_sha256 = ?, body_pruned_at = ? WHERE seq = ?",
    row.envelope_sha256 ?? envelopeDigest,
    now,
    seq,
  );
  return null;
}

function pruneRecords(
  sql: SqlStorage,
  after: ChainPoint,
  archivedThrough: number,
  keepMs: number,
  now: number,
  maxRows: number,
  held: Set<number>,
): Omit<Pass, "through"> & { through: ChainPoint } {
  const passed: ReturnType<typeof candidates> = [];
  let nextAt: number | null = null;
  for (const c of candidates(sql, after.seq, archivedThrough, maxRows)) {
    nextAt = tooYoung(c, keepMs, now);
    if (nextAt === null && c.pending && !holdBack(held, c.seq)) nextAt = now + HELD_BACK_RETRY_MS;
    if (nextAt !== null) break;
    passed.push(c);
  }
  const last = passed.at(-1);
  if (!last) return { through: after, pruned: 0, nextAt };
  // The passed records are the contiguous run after `after`; the held ones stay, the runs between them go.
  let runStart = after.seq;
  for (const c of passed) {
    if (!held.has(c.seq)) continue;
    removeRecords(sql, runStart, c.seq - 1, now);
    runStart = c.seq;
  }
  removeRecords(sql, runStart, last.seq, now);
  if (nextAt === null && last.seq < archivedThrough) nextAt = now;
  return { through: { seq: last.seq, hash: last.record_hash }, pruned: passed.filter((c) => !held.has(c.seq)).length, nextAt };
}

/**
 * Removes the records after `afterSeq` through `throughSeq` with their search keys, hand-off rows,
 * enrichment and download rows (ranges: an IN list would exceed SQLite's 100 bound parameters),
 * keeping their ids (pruned_ids) while a look-back may reach them. Nothing when the range is empty.
 */
function removeRecords(sql: SqlStorage, afterSeq: number, throughSeq: number, now: number): void {
  if (throughSeq <= afterSeq) return;
  sql.exec(
    `INSERT OR IGNORE INTO pruned_ids (delivery_id, seq, kind, received_at, duplicate_count)
     SELECT delivery_id, seq, kind, received_at, duplicate_count FROM deliveries WHERE seq > ? AND seq <= ? AND received_at >= ?`,
    afterSeq,
    throughSeq,
    now - PRUNED_ID_KEEP_MS,
  );
  sql.exec("DELETE FROM search_keys WHERE seq > ? AND seq <= ?", afterSeq, throughSeq);
  for (const table of ["handoffs", "enrichments", "downloads"])
    sql.exec(`DELETE FROM ${table} WHERE delivery_id IN (SELECT delivery_id FROM deliveries WHERE seq > ? AND seq <= ?)`, afterSeq, throughSeq);
  sql.exec("DELETE FROM deliveries WHERE seq > ? AND seq <= ?", afterSeq, throughSeq);
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
