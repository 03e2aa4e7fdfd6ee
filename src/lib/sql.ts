/**
 * A piece of SQL with its own bound parameters, in order. Fragments compose by concatenation, so
 * no caller ever counts `?1..?n` positions across shared pieces of SQL.
 */
export interface Fragment {
  sql: string;
  params: SqlStorageValue[];
}

/** A fragment from SQL text with `?` placeholders and their values. */
export function fragment(sql: string, ...params: SqlStorageValue[]): Fragment {
  return { sql, params };
}

/** Joins fragments with a separator (`" AND "` by default); an empty list is `1` (true). */
export function joinFragments(parts: readonly Fragment[], separator = " AND "): Fragment {
  if (parts.length === 0) return { sql: "1", params: [] };
  return { sql: parts.map((p) => `(${p.sql})`).join(separator), params: parts.flatMap((p) => p.params) };
}

/** Runs a fragment (`SELECT ... WHERE <where>`-style text around it is the caller's). */
export function execFragment<T extends Record<string, SqlStorageValue>>(sql: SqlStorage, f: Fragment): SqlStorageCursor<T> {
  return sql.exec<T>(f.sql, ...f.params);
}

/** `?, ?, ?` for a list of values, for `IN (...)`. */
export function placeholders(values: readonly unknown[]): string {
  return values.map(() => "?").join(", ");
}

/** Bound parameters one Durable Object SQLite statement takes at most (SQLITE_MAX_VARIABLE_NUMBER there is 100). */
export const MAX_BOUND_PARAMETERS = 100;

/** `values` in chunks that fit one statement's `IN (...)` beside `reserved` other parameters. */
export function inChunks<T>(values: readonly T[], reserved = 0): T[][] {
  const size = MAX_BOUND_PARAMETERS - reserved;
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.slice(i, i + size));
  return out;
}
