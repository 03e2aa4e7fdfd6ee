import { bumpCounter } from "../lib/counters";
/**
 * Counters of the relay's CentrePoint V3 API requests, by method, endpoint (path template) and
 * status ("none" when CentrePoint did not answer), kept in a Durable Object's `counters` table
 * (name, value): the CentrePointGateway's and the Reconciler's. Read by /admin/metrics.
 */
import type { RequestMetric } from "../providers/centrepoint/api/client";

/** One counted kind of request. */
export interface ApiCallCount {
  method: string;
  endpoint: string;
  status: string;
  count: number;
}

const PREFIX = "api|";

/** Counts one request. */
export function countApiCall(sql: SqlStorage, m: RequestMetric): void {
  bumpCounter(sql, `${PREFIX}${m.method}|${m.endpoint}|${m.status ?? "none"}`);
}

/** Every counted kind of request. */
export function readApiCalls(sql: SqlStorage): ApiCallCount[] {
  return sql
    .exec<{ name: string; value: number }>("SELECT name, value FROM counters WHERE name >= ? AND name < ?", PREFIX, "api}")
    .toArray()
    .map((c) => {
      const [, method, endpoint, status] = c.name.split("|");
      return { method: method!, endpoint: endpoint!, status: status!, count: c.value };
    });
}
