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

/** Applies deltas (one row read, one written); nothing for none. Synchronous: no other write comes between the read and the write. */
export function bumpCounters(sql: SqlStorage, deltas: Deltas | Record<string, number>): void {
  const entries = (deltas instanceof Map ? [...deltas] : Object.entries(deltas)).filter(([, n]) => n !== 0);
  if (entries.length === 0) return;
  const all = readAll(sql);
  for (const [name, n] of entries) all[name] = (all[name] ?? 0) + n;
  sql.exec("INSERT INTO counter_set (id, data) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data", JSON.stringify(all));
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
