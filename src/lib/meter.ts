/**
 * Cloudflare bills Durable Objects by requests and by SQLite rows read and written. A meter wraps
 * an object's SqlStorage and adds up each cursor's `rowsRead`/`rowsWritten`, and the object counts
 * its own invocations, so the benchmark and /admin/metrics can show billing units per event.
 * Counts are per instance (since it started), in memory.
 */

/** Billing units an object has used since its instance started. */
export interface Usage {
  /** RPC calls and alarm runs. */
  requests: number;
  rowsRead: number;
  rowsWritten: number;
}

/** What one statement (by its SQL text) cost over its runs, in a statement tally. */
export interface StatementUsage {
  runs: number;
  rowsRead: number;
  rowsWritten: number;
}

/**
 * Where the rows go, per statement: null (off) unless a test or a profile turns it on with
 * `tallyStatements(true)`. Shared by every metered object of the isolate; keyed by SQL text with
 * its whitespace collapsed.
 */
let tally: Map<string, StatementUsage> | null = null;

/** Starts (a fresh, empty tally) or stops the per-statement tally; returns the tally it started. */
export function tallyStatements(on: boolean): Map<string, StatementUsage> | null {
  tally = on ? new Map() : null;
  return tally;
}

/** A metered view of a SqlStorage: the same `exec`, with the rows each statement read and wrote added up. */
export function meterSql(sql: SqlStorage): { sql: SqlStorage; usage: Usage; settle(): void } {
  const usage: Usage = { requests: 0, rowsRead: 0, rowsWritten: 0 };
  // The last cursor is counted once the next statement runs (callers consume a cursor before the next exec), or on settle().
  let last: SqlStorageCursor<Record<string, SqlStorageValue>> | null = null;
  let lastQuery = "";
  const settle = () => {
    if (last) {
      usage.rowsRead += last.rowsRead;
      usage.rowsWritten += last.rowsWritten;
      if (tally) {
        const key = lastQuery.replace(/\s+/g, " ").trim();
        const s = tally.get(key) ?? { runs: 0, rowsRead: 0, rowsWritten: 0 };
        s.runs++;
        s.rowsRead += last.rowsRead;
        s.rowsWritten += last.rowsWritten;
        tally.set(key, s);
      }
      last = null;
    }
  };
  const metered = new Proxy(sql, {
    get(target, prop, receiver) {
      if (prop === "exec") {
        return (query: string, ...bindings: SqlStorageValue[]) => {
          settle();
          last = target.exec(query, ...bindings);
          lastQuery = query;
          return last;
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { sql: metered, usage, settle };
}
