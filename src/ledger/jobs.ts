/**
 * Background work of a ledger ("one alarm, many rows"): one row per kind of job in `jobs`, with
 * the time it is next due and its progress as JSON. The ledger's alarm runs due hand-offs first,
 * then one bounded slice of each due job, and re-arms at the earliest due row (ledger.ts). SQLite
 * is the truth, so an evicted object loses no progress. Plain functions over the SqlStorage.
 */

/** archive: closed segments to R2 (archive.ts); prune: retention (retention.ts); verify: the integrity check (integrity.ts). */
export type JobKind = "archive" | "prune" | "verify";

/** A ledger job's row (archive, prune or verify). Times are epoch ms. */
export interface LedgerJob<S> {
  kind: JobKind;
  /** When the alarm should run it next; null when it has nothing to do until something schedules it. */
  dueAt: number | null;
  state: S;
  lastRunAt: number | null;
  /** Why its last slice failed (it is retried later), or null. */
  lastError: string | null;
}

/** A job's row, or `initial` state with nothing scheduled when it never ran. */
export function readJob<S>(sql: SqlStorage, kind: JobKind, initial: S): LedgerJob<S> {
  const r = sql
    .exec<{ due_at: number | null; state: string; last_run_at: number | null; last_error: string | null }>(
      "SELECT due_at, state, last_run_at, last_error FROM jobs WHERE kind = ?",
      kind,
    )
    .toArray()[0];
  if (!r) return { kind, dueAt: null, state: initial, lastRunAt: null, lastError: null };
  return { kind, dueAt: r.due_at, state: { ...initial, ...(JSON.parse(r.state) as S) }, lastRunAt: r.last_run_at, lastError: r.last_error };
}

/** Stores a job's row (every field given; read it first to keep the others). */
export function writeJob<S>(sql: SqlStorage, job: LedgerJob<S>): void {
  sql.exec(
    "INSERT OR REPLACE INTO jobs (kind, due_at, state, last_run_at, last_error) VALUES (?, ?, ?, ?, ?)",
    job.kind,
    job.dueAt,
    JSON.stringify(job.state),
    job.lastRunAt,
    job.lastError === null ? null : job.lastError.slice(0, 500),
  );
}

/** Makes a job due at `at` unless it is due earlier already; creates its row when needed. */
export function scheduleJob(sql: SqlStorage, kind: JobKind, at: number): void {
  sql.exec(
    `INSERT INTO jobs (kind, due_at) VALUES (?, ?)
     ON CONFLICT (kind) DO UPDATE SET due_at = MIN(COALESCE(due_at, excluded.due_at), excluded.due_at)`,
    kind,
    at,
  );
}

/** When the earliest job is due, or null when none is scheduled. */
export function nextJobAt(sql: SqlStorage): number | null {
  return sql.exec<{ at: number | null }>("SELECT MIN(due_at) AS at FROM jobs").one().at;
}

/** The kinds due at `now`, earliest first. */
export function dueJobs(sql: SqlStorage, now: number): JobKind[] {
  return sql
    .exec<{ kind: JobKind }>("SELECT kind FROM jobs WHERE due_at <= ? ORDER BY due_at, kind", now)
    .toArray()
    .map((r) => r.kind);
}
