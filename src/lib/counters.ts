/**
 * Named integer counters maintained on write, so reads (stats, health, metrics) never scan
 * history. An object keeps all of them as one JSON object in its single `counter_set` row
 * (`id = 1`, `data`), so a write path's changes, however many counters they touch, cost one row
 * written (Cloudflare bills rows written; a row per counter cost up to six per state change). A
 * write path collects its changes as deltas and applies them in one statement, in its transaction.
 * The `counters` view shows them as `(name, value)` rows for SQL readers (tests, ad-hoc queries).
 */

/** The migration that moves an object's `counters (name, value)` table into the one-row form (keeps every value). */
export const COUNTER_SET_MIGRATION = `CREATE TABLE counter_set (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     data TEXT NOT NULL                    -- JSON object: counter name → integer
   );
   INSERT INTO counter_set (id, data) SELECT 1, COALESCE((SELECT json_group_object(name, value) FROM counters), '{}');
   DROP TABLE counters;
   CREATE VIEW counters AS SELECT j.key AS name, j.value AS value FROM counter_set, json_each(counter_set.data) AS j;`;

/**
 * Hourly snapshots, for trends (GET /admin/trends, the dashboard's charts). `counter_set.hour` is the
 * hour (epoch ms / 3,600,000, UTC) of the latest change; `counter_hours` holds, per hour that had
 * changes, every counter as it stood at that hour's end. An hour's activity is the difference between
 * its snapshot and the one before; hours without a row had none. Cost: one row written per object per
 * hour with changes, plus the rows older than ROLLUP_KEEP_HOURS deleted then; nothing per event.
 * Crash-safe by construction: the snapshot is written in the transaction of the change that follows it.
 * Upgrading (hour NULL) keeps the counters of before as the baseline of the hour before, so the first
 * hour does not show the whole history.
 */
export const COUNTER_HOURS_MIGRATION = `ALTER TABLE counter_set ADD COLUMN hour INTEGER;
   CREATE TABLE counter_hours (
     hour INTEGER PRIMARY KEY,             -- epoch hours (UTC)
     data TEXT NOT NULL                    -- JSON object: counter name → value at the hour's end
   ) WITHOUT ROWID;`;

/** Hours of snapshots kept: 90 days (docs/storage.md). */
export const ROLLUP_KEEP_HOURS = 90 * 24;
export const HOUR_MS = 3_600_000;
export const hourOf = (ms: number): number => Math.floor(ms / HOUR_MS);

function closeHour(sql: SqlStorage, closed: number, data: string, current: number): void {
  sql.exec("INSERT INTO counter_hours (hour, data) VALUES (?, ?) ON CONFLICT (hour) DO UPDATE SET data = excluded.data", closed, data);
  sql.exec("DELETE FROM counter_hours WHERE hour < ?", current - ROLLUP_KEEP_HOURS);
}

/**
 * The counters at the end of each hour of `[from, to]` (epoch hours), oldest first: each hour's
 * snapshot, the current values for the open hour, and the previous hour's for an hour without
 * changes; `before` is the state at the end of hour `from - 1` ({} when nothing is older).
 * Reads at most one row per hour of the range, plus one. Writes nothing.
 */
export function countersByHour(
  sql: SqlStorage,
  from: number,
  to: number,
): { before: Record<string, number>; hours: { hour: number; values: Record<string, number> }[] } {
  const parse = (d: string | undefined): Record<string, number> => (d === undefined ? {} : (JSON.parse(d) as Record<string, number>));
  const before = parse(sql.exec<{ data: string }>("SELECT data FROM counter_hours WHERE hour < ? ORDER BY hour DESC LIMIT 1", from).toArray()[0]?.data);
  const rows = new Map(
    sql
      .exec<{ hour: number; data: string }>("SELECT hour, data FROM counter_hours WHERE hour BETWEEN ? AND ?", from, to)
      .toArray()
      .map((r) => [r.hour, r.data]),
  );
  const open = sql.exec<{ data: string; hour: number | null }>("SELECT data, hour FROM counter_set WHERE id = 1").toArray()[0];
  if (open && open.hour !== null && open.hour >= from && open.hour <= to) rows.set(open.hour, open.data);
  const hours: { hour: number; values: Record<string, number> }[] = [];
  let last = before;
  for (let h = from; h <= to; h++) {
    const d = rows.get(h);
    if (d !== undefined) last = parse(d);
    hours.push({ hour: h, values: last });
  }
  return { before, hours };
}

/** Changes to apply, by counter name. */
export type Deltas = Map<string, number>;

/** Adds `n` to a counter's pending change. */
export function addDelta(deltas: Deltas, name: string, n = 1): void {
  if (n !== 0) deltas.set(name, (deltas.get(name) ?? 0) + n);
}

/** Every counter (one row read). */
function readAll(sql: SqlStorage): Record<string, number> {
  const data = sql.exec<{ data: string }>("SELECT data FROM counter_set WHERE id = 1").toArray()[0]?.data;
  return data === undefined ? {} : (JSON.parse(data) as Record<string, number>);
}

/**
 * Applies deltas (one row read, one written); nothing for none. Synchronous: no other write comes
 * between the read and the write. The first change in a new hour first keeps the counters as they
 * were at the end of the last hour that changed them (one `counter_hours` row per object per hour
 * with changes, in the same transaction: see "Hourly snapshots" below).
 */
export function bumpCounters(sql: SqlStorage, deltas: Deltas | Record<string, number>, now = Date.now()): void {
  const entries = (deltas instanceof Map ? [...deltas] : Object.entries(deltas)).filter(([, n]) => n !== 0);
  if (entries.length === 0) return;
  const row = sql.exec<{ data: string; hour: number | null }>("SELECT data, hour FROM counter_set WHERE id = 1").toArray()[0];
  const hour = Math.max(hourOf(now), row?.hour ?? 0);
  const all = row ? (JSON.parse(row.data) as Record<string, number>) : {};
  // An hour ended (or, on upgrade, the counters of before become the baseline, unless all are still 0).
  if (row && row.hour !== hour && (row.hour !== null || Object.values(all).some((v) => v !== 0))) closeHour(sql, row.hour ?? hour - 1, row.data, hour);
  for (const [name, n] of entries) all[name] = (all[name] ?? 0) + n;
  sql.exec(
    "INSERT INTO counter_set (id, data, hour) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data, hour = excluded.hour",
    JSON.stringify(all),
    hour,
  );
}

/** Adds `by` to one counter. */
export function bumpCounter(sql: SqlStorage, name: string, by = 1): void {
  bumpCounters(sql, { [name]: by });
}

/** A counter's value, 0 when never written. */
export function readCounter(sql: SqlStorage, name: string): number {
  return readAll(sql)[name] ?? 0;
}

/** Every counter whose name starts with `prefix`, by the rest of its name, in name order. */
export function readCounters(sql: SqlStorage, prefix: string): Map<string, number> {
  const all = readAll(sql);
  const out = new Map<string, number>();
  for (const name of Object.keys(all).sort()) if (name.startsWith(prefix)) out.set(name.slice(prefix.length), all[name]!);
  return out;
}
