import { bumpCounters } from "../lib/counters";
import { DEFAULT_RETENTION_DAYS } from "../config/schemas";
import { DAY_MS } from "../lib/time";
import { PRUNED_ATTEMPTS, PRUNED_DISPATCHES } from "./counters";
import { log } from "../lib/log";
import { type MetaRow, readMeta } from "./views";

/**
 * Retention of an outbox: dispatches delivered more than the target's `retentionDays` ago go,
 * with their attempts, a bounded slice per alarm run. Dead, held, not_wanted, pending and
 * delivering ones are never pruned. The counters stay right: `state:delivered`, the attempt
 * counts and the latency histogram count what happened, so they keep the pruned rows; the
 * `pruned:*` counters say how many rows went.
 */

/** Dispatches removed per alarm run at most (each with its attempts). */
export const PRUNE_ROWS = 500;

/** The retention the alarm last read from the target's document. */
export function retentionMs(meta: Pick<MetaRow, "retention_days">): number {
  return (meta.retention_days ?? DEFAULT_RETENTION_DAYS) * DAY_MS;
}

/** When the oldest delivered dispatch is due to be pruned, or null when none is delivered. */
export function pruneDueAt(sql: SqlStorage, meta: Pick<MetaRow, "retention_days">): number | null {
  // Runs after every alarm. Without INDEXED BY the planner picks dispatches_by_state and reads every delivered row
  // (then sorts them); the partial index answers with its first entry.
  const oldest = sql
    .exec<{ at: number }>("SELECT delivered_at AS at FROM dispatches INDEXED BY dispatches_delivered WHERE state = 'delivered' ORDER BY delivered_at LIMIT 1")
    .toArray()[0]?.at;
  return oldest === undefined ? null : oldest + retentionMs(meta);
}

/** Removes up to `maxRows` dispatches delivered at or before `cutoff`, oldest first, with their attempts. */
export function pruneDelivered(sql: SqlStorage, cutoff: number, now: number, maxRows = PRUNE_ROWS): { dispatches: number; attempts: number } {
  // The same rows twice in one transaction (an IN list would exceed SQLite's 100 bound parameters).
  const chosen = "SELECT seq FROM dispatches INDEXED BY dispatches_delivered WHERE state = 'delivered' AND delivered_at <= ? ORDER BY delivered_at LIMIT ?";
  // Attempts rows, and the attempts kept on the dispatches' rows (transitions.ts IN_ROW).
  const attempts =
    sql.exec(`DELETE FROM attempts WHERE seq IN (${chosen}) RETURNING id`, cutoff, maxRows).toArray().length +
    sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM dispatches WHERE seq IN (${chosen}) AND attempt IS NOT NULL`, cutoff, maxRows).one().n;
  const dispatches = sql.exec(`DELETE FROM dispatches WHERE seq IN (${chosen}) RETURNING seq`, cutoff, maxRows).toArray().length;
  if (dispatches === 0) return { dispatches: 0, attempts };
  bumpCounters(sql, { [PRUNED_DISPATCHES]: dispatches, [PRUNED_ATTEMPTS]: attempts });
  sql.exec("UPDATE meta SET last_pruned_at = ?", now);
  return { dispatches, attempts };
}

/**
 * One slice of retention when delivered dispatches are older than the target's retentionDays (the
 * alarm re-arms at once while more are due). The meta row it read when it removed rows, else null.
 */
export function pruneIfDue(sql: SqlStorage, transaction: <T>(f: () => T) => T, now: number): MetaRow | null {
  const meta = readMeta(sql);
  const due = pruneDueAt(sql, meta);
  if (due === null || due > now) return null;
  const pruned = transaction(() => pruneDelivered(sql, now - retentionMs(meta), now));
  if (pruned.dispatches > 0) log("info", "outbox pruned", { target: meta.target_id, ...pruned });
  return pruned.dispatches > 0 ? meta : null;
}
