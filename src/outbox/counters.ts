import { addDelta, type Deltas } from "../lib/counters";
import { type DispatchState, LATENCY_BUCKETS_S } from "./views";

/**
 * Names of the outbox's counters (lib/counters.ts), maintained by every state change in
 * transitions.ts and read by health() and metrics():
 *
 *   state:<state>                      dispatches in that state; `delivered` keeps counting those pruned;
 *                                      `pending` counts the delivering ones too (views.ts splits them)
 *   attempts:<outcome>:<error class>   finished attempts by outcome and error class ("" when none); one
 *                                      in flight is a delivering dispatch, counted there
 *   latency:<i>                        delivered dispatches whose accept-to-delivered latency falls in
 *                                      bucket i of LATENCY_BUCKETS_S (i = its length: above the last)
 *   latency:sum_ms                     the sum of those latencies, ms
 *   pruned:dispatches, pruned:attempts rows removed by retention (retention.ts)
 *
 * A dispatch delivered twice (replayed) counts twice in the histogram: each delivery is one observation.
 */

export const stateCounter = (state: DispatchState): string => `state:${state}`;
export const attemptCounter = (outcome: string, errorClass: string | null): string => `attempts:${outcome}:${errorClass ?? ""}`;
export const LATENCY_SUM_MS = "latency:sum_ms";
export const PRUNED_DISPATCHES = "pruned:dispatches";
export const PRUNED_ATTEMPTS = "pruned:attempts";

/** The histogram bucket of a latency in ms: the first bucket whose upper bound it does not exceed, else the overflow bucket. */
export function latencyBucket(ms: number): number {
  const i = LATENCY_BUCKETS_S.findIndex((b) => ms <= b * 1000);
  return i === -1 ? LATENCY_BUCKETS_S.length : i;
}

/** The same bucket rule as SQL over an expression in ms (used by the migration that filled the counters). */
export function latencyBucketSql(ms: string): string {
  return `CASE ${LATENCY_BUCKETS_S.map((b, i) => `WHEN ${ms} <= ${b * 1000} THEN ${i}`).join(" ")} ELSE ${LATENCY_BUCKETS_S.length} END`;
}

/** The counter a state is counted under: a delivering dispatch is counted as pending (claiming a batch writes no counter; health() tells them apart). */
const countedAs = (state: DispatchState): DispatchState => (state === "delivering" ? "pending" : state);

/** `n` dispatches moved from one state to another. */
export function moveState(deltas: Deltas, from: DispatchState, to: DispatchState, n = 1): void {
  addDelta(deltas, stateCounter(countedAs(from)), -n);
  addDelta(deltas, stateCounter(countedAs(to)), n);
}

/** One dispatch delivered `latencyMs` after it was accepted. */
export function observeLatency(deltas: Deltas, latencyMs: number): void {
  const ms = Math.max(0, latencyMs);
  addDelta(deltas, `latency:${latencyBucket(ms)}`);
  addDelta(deltas, LATENCY_SUM_MS, ms);
}
