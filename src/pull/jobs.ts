import { bumpCounter } from "../lib/counters";
/**
 * A Puller's rows (docs/pull.md): one enrichment job per delivery, and the data files its lookups
 * listed (what a file link may name). Plain functions over the Puller's SqlStorage. Times are epoch ms.
 *
 *   hand-off ─▶ pending ──(every fact found, or failed for good, or past give_up_at)──▶ settled
 *                  ▲  └──(a retryable failure: backoff)──┘                                │
 *                  └───────────────────────────── retry enrichment ◀─────────────────────┘
 */
import type { EnrichFact } from "../config/schemas";
import type { DataFileFact, EventKeys, StoredEnrichment } from "./facts";

/** Settled jobs kept this long (a "retry enrichment" of an older delivery is refused). */
export const SETTLED_KEPT_MS = 30 * 86_400_000;
/** Files kept this long past CentrePoint's expiry (or past their listing when it gave none). */
export const FILES_KEPT_MS = 90 * 86_400_000;

/** An enrichment job (one per delivery) as the Puller runs it. */
export interface EnrichmentJob {
  deliveryId: string;
  keys: EventKeys;
  facts: EnrichFact[];
  state: "pending" | "settled";
  result: StoredEnrichment | null;
  attempts: number;
  nextAt: number | null;
  giveUpAt: number;
  fresh: boolean;
  outcome: "complete" | "partial" | "failed" | null;
  createdAt: number;
  updatedAt: number;
}

/** A data file a job listed. */
export interface FileRecord {
  fileId: string;
  deliveryId: string;
  trackingId: string;
  fileName: string;
  expiresAt: number | null;
}

/**
 * Adds a job, due now (idempotent on the delivery id); returns whether it is new or widened. A job
 * the delivery already has that lacks some of `facts` (a target planned later: src/ledger/enrichment.ts
 * planReleased) gets them and is due now, pending again if it had settled.
 */
export function insertJob(sql: SqlStorage, deliveryId: string, keys: EventKeys, facts: readonly EnrichFact[], giveUpAt: number, now: number): boolean {
  const existing = readJob(sql, deliveryId);
  if (existing) {
    const missing = facts.filter((f) => !existing.facts.includes(f));
    if (missing.length === 0) return false;
    sql.exec(
      "UPDATE jobs SET facts = ?, state = 'pending', next_at = ?, give_up_at = MAX(give_up_at, ?), outcome = NULL, updated_at = ? WHERE delivery_id = ?",
      JSON.stringify([...existing.facts, ...missing]),
      now,
      giveUpAt,
      now,
      deliveryId,
    );
    return true;
  }
  return (
    sql
      .exec(
        `INSERT INTO jobs (delivery_id, kind, keys, facts, state, next_at, give_up_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id`,
        deliveryId,
        keys.kind,
        JSON.stringify(keys),
        JSON.stringify(facts),
        now,
        giveUpAt,
        now,
        now,
      )
      .toArray().length > 0
  );
}

/** Pending jobs that are due, earliest first. */
export function dueJobs(sql: SqlStorage, now: number, limit: number): EnrichmentJob[] {
  return sql.exec("SELECT * FROM jobs WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?", now, limit).toArray().map(rowToJob);
}

/** One job, or null. */
export function readJob(sql: SqlStorage, deliveryId: string): EnrichmentJob | null {
  const row = sql.exec("SELECT * FROM jobs WHERE delivery_id = ?", deliveryId).toArray()[0];
  return row ? rowToJob(row) : null;
}

/** Writes an attempt's result: settled with its outcome, or pending again at `nextAt`. */
export function saveAttempt(
  sql: SqlStorage,
  deliveryId: string,
  result: StoredEnrichment,
  next: { settled: true; outcome: NonNullable<EnrichmentJob["outcome"]> } | { settled: false; at: number },
  now: number,
): void {
  sql.exec(
    "UPDATE jobs SET result = ?, attempts = ?, state = ?, next_at = ?, outcome = ?, fresh = 0, updated_at = ? WHERE delivery_id = ?",
    JSON.stringify(result),
    result.attempts,
    next.settled ? "settled" : "pending",
    next.settled ? null : next.at,
    next.settled ? next.outcome : null,
    now,
    deliveryId,
  );
  if (next.settled) bump(sql, `enrich:${next.outcome}`);
}

/** Runs a job again from scratch (no fact kept, subject cache bypassed), due now. Returns whether the job exists. */
export function restartJob(sql: SqlStorage, deliveryId: string, giveUpAt: number, now: number): boolean {
  return (
    sql.exec(
      "UPDATE jobs SET state = 'pending', result = NULL, attempts = 0, next_at = ?, give_up_at = ?, fresh = 1, outcome = NULL, updated_at = ? WHERE delivery_id = ?",
      now,
      giveUpAt,
      now,
      deliveryId,
    ).rowsWritten > 0
  );
}

/** When the earliest pending job is due, or null. */
export function nextJobAt(sql: SqlStorage): number | null {
  return sql.exec<{ at: number | null }>("SELECT MIN(next_at) AS at FROM jobs WHERE state = 'pending'").one().at;
}

/** Records the files a datafiles lookup listed (a file link names one of these). */
export function recordFiles(sql: SqlStorage, deliveryId: string, trackingId: string, files: readonly DataFileFact[], now: number): void {
  for (const f of files) {
    const expires = f.expiresAt === null ? NaN : Date.parse(f.expiresAt);
    sql.exec(
      "INSERT OR REPLACE INTO files (file_id, delivery_id, tracking_id, file_name, expires_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
      f.id,
      deliveryId,
      trackingId,
      f.fileName,
      Number.isFinite(expires) ? expires : null,
      now,
    );
  }
}

/** A file a job listed, or null. */
export function readFile(sql: SqlStorage, fileId: string): FileRecord | null {
  const r = sql.exec("SELECT * FROM files WHERE file_id = ?", fileId).toArray()[0];
  return r
    ? {
        fileId: r.file_id as string,
        deliveryId: r.delivery_id as string,
        trackingId: r.tracking_id as string,
        fileName: r.file_name as string,
        expiresAt: r.expires_at as number | null,
      }
    : null;
}

/** Deletes settled jobs past SETTLED_KEPT_MS and files past FILES_KEPT_MS (at most `limit` each per call). */
export function pruneJobs(sql: SqlStorage, now: number, limit = 500): void {
  sql.exec(
    "DELETE FROM jobs WHERE delivery_id IN (SELECT delivery_id FROM jobs WHERE state = 'settled' AND updated_at < ? ORDER BY updated_at LIMIT ?)",
    now - SETTLED_KEPT_MS,
    limit,
  );
  sql.exec(
    "DELETE FROM files WHERE file_id IN (SELECT file_id FROM files WHERE recorded_at < ? AND COALESCE(expires_at, 0) < ? ORDER BY recorded_at LIMIT ?)",
    now - FILES_KEPT_MS,
    now - FILES_KEPT_MS,
    limit,
  );
}

/** Pending jobs now, and settled jobs by outcome since the Puller began. */
export function jobCounts(sql: SqlStorage): { pending: number; outcomes: Record<string, number> } {
  const pending = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM jobs WHERE state = 'pending'").one().n;
  const outcomes = sql.exec<{ name: string; value: number }>("SELECT name, value FROM counters WHERE name LIKE 'enrich:%'").toArray();
  return { pending, outcomes: Object.fromEntries(outcomes.map((o) => [o.name.slice("enrich:".length), o.value])) };
}

function bump(sql: SqlStorage, name: string): void {
  bumpCounter(sql, name);
}

function rowToJob(r: Record<string, SqlStorageValue>): EnrichmentJob {
  return {
    deliveryId: r.delivery_id as string,
    keys: JSON.parse(r.keys as string) as EventKeys,
    facts: JSON.parse(r.facts as string) as EnrichFact[],
    state: r.state as EnrichmentJob["state"],
    result: r.result === null ? null : (JSON.parse(r.result as string) as StoredEnrichment),
    attempts: r.attempts as number,
    nextAt: r.next_at as number | null,
    giveUpAt: r.give_up_at as number,
    fresh: r.fresh === 1,
    outcome: r.outcome as EnrichmentJob["outcome"],
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}
