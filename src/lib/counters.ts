/**
 * Named integer counters kept in a Durable Object's `counters (name TEXT PRIMARY KEY, value
 * INTEGER NOT NULL)` table and maintained on write, so reads (stats, health, metrics) never scan
 * history. A write path collects its changes as deltas and applies them in one statement.
 */

/** Changes to apply, by counter name. */
export type Deltas = Map<string, number>;

/** Adds `n` to a counter's pending change. */
export function addDelta(deltas: Deltas, name: string, n = 1): void {
  if (n !== 0) deltas.set(name, (deltas.get(name) ?? 0) + n);
}

/** Applies deltas in one statement (one row written per counter that changes); nothing for none. */
export function bumpCounters(sql: SqlStorage, deltas: Deltas | Record<string, number>): void {
  const entries = (deltas instanceof Map ? [...deltas] : Object.entries(deltas)).filter(([, n]) => n !== 0);
  if (entries.length === 0) return;
  sql.exec(
    `INSERT INTO counters (name, value) VALUES ${entries.map(() => "(?, ?)").join(", ")}
     ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`,
    ...entries.flat(),
  );
}

/** Adds `by` to one counter. */
export function bumpCounter(sql: SqlStorage, name: string, by = 1): void {
  bumpCounters(sql, { [name]: by });
}

/** A counter's value, 0 when never written. */
export function readCounter(sql: SqlStorage, name: string): number {
  return (sql.exec("SELECT value FROM counters WHERE name = ?", name).toArray()[0]?.value as number | undefined) ?? 0;
}

/** Every counter whose name starts with `prefix`, by the rest of its name (a range of the primary key, not a scan). */
export function readCounters(sql: SqlStorage, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  // Names are compared bytewise; every name with the prefix sorts below prefix + U+FFFF.
  for (const r of sql.exec<{ name: string; value: number }>(
    "SELECT name, value FROM counters WHERE name >= ? AND name < ? ORDER BY name",
    prefix,
    `${prefix}\uffff`,
  ))
    out.set(r.name.slice(prefix.length), r.value);
  return out;
}
