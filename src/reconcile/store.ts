import { bumpCounter } from "../lib/counters";
/**
 * The Reconciler's rows, as plain functions over its SqlStorage: runs (the run in progress and
 * the reports of finished ones), the distinct delivery ids of the run in progress, meta and
 * counters. Times are epoch ms. Bounds: REPORTS_KEPT reports, BACKFILLED_IDS_KEPT ids per report,
 * run items only while a run is in progress (docs/storage.md).
 */
import { inChunks, placeholders } from "../lib/sql";
import { countItems, type ItemCounts, type ItemGroup, type ItemState } from "./history";

/** Newest reports kept; older ones are deleted when a run ends (counters keep the totals). */
export const REPORTS_KEPT = 200;
/** Backfilled delivery ids listed in one report at most (the count is exact). */
export const BACKFILLED_IDS_KEPT = 1000;

export type RunTrigger = "manual" | "scheduled";
/** `ok`: every history row read and reconciled; `errors`: read to the end, some rows or backfills failed; `failed`: stopped early. */
export type RunOutcome = "running" | "ok" | "errors" | "failed";

/** One run: its progress while it is in progress, its report once it ended. */
export interface ReconcileReport {
  id: number;
  trigger: RunTrigger;
  startedAt: number;
  finishedAt: number | null;
  /** False while the run is in progress (it continues in the background). */
  complete: boolean;
  outcome: RunOutcome;
  lookbackFrom: number;
  pages: number;
  /** History rows read, repeats of one delivery id included. */
  scanned: number;
  /** Rows read that were created before `lookbackFrom` (not reconciled). */
  outsideLookback: number;
  matched: number;
  /** Ids the ledger recorded once and retention has removed since (never backfilled again). */
  knownPruned: number;
  backfilled: number;
  recordedButFailedAtCentrePoint: number;
  skipped: number;
  errors: number;
  firstError: string | null;
  /** Backfilled delivery ids (at most BACKFILLED_IDS_KEPT); while running, those so far. */
  backfilledIds: string[];
  /** Why a `failed` run stopped: its source's configuration, CentrePoint's API, or a bug (logged). Null otherwise. */
  failure: RunFailure["kind"] | null;
  /** A run stopped by CentrePoint's API: its HTTP status (null: no answer) and the path template. */
  upstream: { status: number | null; endpoint: string } | null;
}

/** Why a run stopped early. */
export type RunFailure =
  | { kind: "config"; message: string }
  | { kind: "upstream"; message: string; upstream: { status: number | null; endpoint: string } }
  | { kind: "internal"; message: string };

/** Where the run in progress stands: what continuing it needs (its report: `listReports`). */
export interface RunProgress {
  id: number;
  lookbackFrom: number;
  pages: number;
  nextOffset: number;
  totalCount: number | null;
  invocations: number;
  pauses: number;
}

type Row = Record<string, SqlStorageValue>;

/** Starts a run; the caller has checked none is in progress (a second one violates a unique index). */
export function startRun(sql: SqlStorage, trigger: RunTrigger, now: number, lookbackFrom: number): void {
  sql.exec("INSERT INTO runs (trigger, started_at, outcome, lookback_from) VALUES (?, ?, 'running', ?)", trigger, now, lookbackFrom);
}

/** The progress of the run in progress, or null when none is. */
export function runningRun(sql: SqlStorage): RunProgress | null {
  const r = sql.exec("SELECT id, lookback_from, pages, next_offset, total_count, invocations, pauses FROM runs WHERE outcome = 'running'").toArray()[0];
  if (!r) return null;
  return {
    id: r.id as number,
    lookbackFrom: r.lookback_from as number,
    pages: r.pages as number,
    nextOffset: r.next_offset as number,
    totalCount: r.total_count as number | null,
    invocations: r.invocations as number,
    pauses: r.pauses as number,
  };
}

/** When the latest run started, or null when there was none. */
export function lastStartedAt(sql: SqlStorage): number | null {
  return sql.exec<{ at: number | null }>("SELECT MAX(started_at) AS at FROM runs").one().at;
}

/** Counts one more invocation of the run in progress. */
export function countInvocation(sql: SqlStorage): void {
  sql.exec("UPDATE runs SET invocations = invocations + 1 WHERE outcome = 'running'");
}

/** Counts one more pause for CentrePoint's rate limit. */
export function countPause(sql: SqlStorage): void {
  sql.exec("UPDATE runs SET pauses = pauses + 1 WHERE outcome = 'running'");
}

/** The states the run in progress already knows of some delivery ids. */
export function itemStates(sql: SqlStorage, ids: readonly string[]): Map<string, ItemState> {
  const out = new Map<string, ItemState>();
  for (const chunk of inChunks(ids))
    for (const r of sql.exec<{ delivery_id: string; state: string }>(
      `SELECT delivery_id, state FROM run_items WHERE delivery_id IN (${placeholders(chunk)})`,
      ...chunk,
    ))
      out.set(r.delivery_id, r.state as ItemState);
  return out;
}

/** Adds a delivery id to the run in progress (ignored when it is there already). */
export function addItem(sql: SqlStorage, deliveryId: string, state: ItemState, provenance: string | null = null): void {
  sql.exec("INSERT OR IGNORE INTO run_items (delivery_id, state, provenance) VALUES (?, ?, ?)", deliveryId, state, provenance);
}

/** Sets the state of a delivery id of the run in progress. */
export function setItemState(sql: SqlStorage, deliveryId: string, state: ItemState, provenance: string | null = null): void {
  sql.exec("UPDATE run_items SET state = ?, provenance = ? WHERE delivery_id = ?", state, provenance, deliveryId);
}

/** Ids whose backfill was started but not confirmed (an invocation that ended between the two). */
export function pendingBackfills(sql: SqlStorage): string[] {
  return sql
    .exec<{ delivery_id: string }>("SELECT delivery_id FROM run_items WHERE state = 'backfilling' LIMIT 500")
    .toArray()
    .map((r) => r.delivery_id);
}

/** What one page of history added to the run in progress; applied in one transaction by the caller. */
export interface PageProgress {
  scanned: number;
  outsideLookback: number;
  /** Ids with a successful send on this page. */
  delivered: readonly string[];
  errors: readonly string[];
  nextOffset: number;
  totalCount: number;
}

/** Applies one page's progress to the run in progress. */
export function recordPage(sql: SqlStorage, p: PageProgress): void {
  for (const id of p.delivered) sql.exec("UPDATE run_items SET delivered = 1 WHERE delivery_id = ?", id);
  sql.exec(
    `UPDATE runs SET pages = pages + 1, scanned = scanned + ?, outside_lookback = outside_lookback + ?, next_offset = ?, total_count = ?
     WHERE outcome = 'running'`,
    p.scanned,
    p.outsideLookback,
    p.nextOffset,
    p.totalCount,
  );
  for (const e of p.errors) addError(sql, e);
}

/** Counts an error of the run in progress; the first one's text is kept (at most 500 characters). */
export function addError(sql: SqlStorage, message: string): void {
  sql.exec("UPDATE runs SET errors = errors + 1, first_error = COALESCE(first_error, ?) WHERE outcome = 'running'", message.slice(0, 500));
}

/**
 * Ends the run in progress: its classes counted from its items, its backfilled ids kept (bounded),
 * its items deleted, the totals counted, reports beyond REPORTS_KEPT deleted. `failure`: why the
 * run stopped early (then the outcome is `failed`). Returns the report.
 */
export function finishRun(sql: SqlStorage, now: number, failure?: RunFailure): ReconcileReport | null {
  const run = runningRun(sql);
  if (!run) return null;
  if (failure) addError(sql, failure.message);
  const unconfirmed = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM run_items WHERE state = 'backfilling'").one().n;
  if (unconfirmed > 0)
    addError(
      sql,
      `${unconfirmed} backfill${unconfirmed === 1 ? " was" : "s were"} started but not confirmed; the next run checks ${unconfirmed === 1 ? "it" : "them"} again`,
    );
  const counts = liveCounts(sql);
  const errors = sql.exec<{ errors: number }>("SELECT errors FROM runs WHERE outcome = 'running'").one().errors;
  const outcome: RunOutcome = failure ? "failed" : errors > 0 ? "errors" : "ok";
  sql.exec(
    `UPDATE runs SET outcome = ?, finished_at = ?, matched = ?, known_pruned = ?, backfilled = ?, recorded_but_failed = ?, skipped = ?, backfilled_ids = ?,
       failure = ?, upstream_status = ?, upstream_endpoint = ? WHERE outcome = 'running'`,
    outcome,
    now,
    counts.matched,
    counts.knownPruned,
    counts.backfilled,
    counts.recordedButFailedAtCentrePoint,
    counts.skipped,
    JSON.stringify(backfilledSoFar(sql)),
    failure?.kind ?? null,
    failure?.kind === "upstream" ? failure.upstream.status : null,
    failure?.kind === "upstream" ? failure.upstream.endpoint : null,
  );
  sql.exec("DELETE FROM run_items");
  bump(sql, `runs:${outcome}`);
  bump(sql, "backfilled", counts.backfilled);
  if (outcome !== "failed") writeMeta(sql, "last_success_at", now);
  sql.exec("DELETE FROM runs WHERE id <= (SELECT MAX(id) FROM runs) - ?", REPORTS_KEPT);
  return getReport(sql, run.id);
}

/** One report by id, or null. */
export function getReport(sql: SqlStorage, id: number): ReconcileReport | null {
  const row = sql.exec("SELECT * FROM runs WHERE id = ?", id).toArray()[0];
  return row ? reportOf(sql, row) : null;
}

/** Reports, newest first (the run in progress first, with its counts so far). */
export function listReports(sql: SqlStorage, limit: number): ReconcileReport[] {
  const rows = sql.exec("SELECT * FROM runs ORDER BY id DESC LIMIT ?", Math.max(1, Math.min(REPORTS_KEPT, Math.floor(limit) || 20))).toArray();
  return rows.map((r) => reportOf(sql, r));
}

/** The report of a row; a run in progress gets its counts so far. */
function reportOf(sql: SqlStorage, row: Row): ReconcileReport {
  return row.outcome === "running" ? rowToReport(row, liveCounts(sql), backfilledSoFar(sql)) : rowToReport(row, null, null);
}

/** Totals since the Reconciler began: runs per outcome and deliveries backfilled. */
export function readTotals(sql: SqlStorage): { runs: Record<Exclude<RunOutcome, "running">, number>; backfilled: number } {
  const value = (name: string) => (sql.exec("SELECT value FROM counters WHERE name = ?", name).toArray()[0]?.value as number | undefined) ?? 0;
  return { runs: { ok: value("runs:ok"), errors: value("runs:errors"), failed: value("runs:failed") }, backfilled: value("backfilled") };
}

/** A value of the meta table (JSON), or null. */
export function readMeta<T>(sql: SqlStorage, key: string): T | null {
  const value = sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
  return value === undefined ? null : (JSON.parse(value as string) as T);
}

/** Stores a value in the meta table as JSON. */
export function writeMeta(sql: SqlStorage, key: string, value: unknown): void {
  sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, JSON.stringify(value));
}

function bump(sql: SqlStorage, name: string, by = 1): void {
  bumpCounter(sql, name, by);
}

/** The classes of the run in progress, counted from its items so far. */
function liveCounts(sql: SqlStorage): ItemCounts {
  const groups: ItemGroup[] = sql
    .exec<{ state: string; provenance: string | null; delivered: number; n: number }>(
      "SELECT state, provenance, delivered, COUNT(*) AS n FROM run_items GROUP BY state, provenance, delivered",
    )
    .toArray()
    .map((r) => ({ state: r.state as ItemState, provenance: r.provenance, delivered: r.delivered === 1, count: r.n }));
  return countItems(groups);
}

function backfilledSoFar(sql: SqlStorage): string[] {
  return sql
    .exec<{ delivery_id: string }>("SELECT delivery_id FROM run_items WHERE state = 'backfilled' ORDER BY delivery_id LIMIT ?", BACKFILLED_IDS_KEPT)
    .toArray()
    .map((r) => r.delivery_id);
}

function rowToReport(r: Row, live: ItemCounts | null, backfilledIds: string[] | null): ReconcileReport {
  const outcome = r.outcome as RunOutcome;
  return {
    id: r.id as number,
    trigger: r.trigger as RunTrigger,
    startedAt: r.started_at as number,
    finishedAt: r.finished_at as number | null,
    complete: outcome !== "running",
    outcome,
    lookbackFrom: r.lookback_from as number,
    pages: r.pages as number,
    scanned: r.scanned as number,
    outsideLookback: r.outside_lookback as number,
    matched: live?.matched ?? (r.matched as number),
    knownPruned: live?.knownPruned ?? (r.known_pruned as number),
    backfilled: live?.backfilled ?? (r.backfilled as number),
    recordedButFailedAtCentrePoint: live?.recordedButFailedAtCentrePoint ?? (r.recorded_but_failed as number),
    skipped: live?.skipped ?? (r.skipped as number),
    errors: r.errors as number,
    firstError: r.first_error as string | null,
    backfilledIds: backfilledIds ?? (JSON.parse(r.backfilled_ids as string) as string[]),
    failure: r.failure as RunFailure["kind"] | null,
    upstream: r.upstream_endpoint === null ? null : { status: r.upstream_status as number | null, endpoint: r.upstream_endpoint as string },
  };
}
