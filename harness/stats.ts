/** Small statistics helpers shared by the simulator, the chaos suite and the bench. */

/**
 * The p-th percentile (0–100) of unsorted `values` by nearest rank: the smallest value with at
 * least p % of the sample at or below it, always a member of the sample (no interpolation);
 * p 0 gives the minimum, p 100 the maximum. NaN for an empty list: callers that print a number
 * for "no sample" say so themselves.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** p50 / p99 / max / count of a latency sample, in the sample's unit, rounded to 0.1; NaN figures for an empty sample. */
export function summarizeLatency(values: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    n: values.length,
    p50: round(percentile(values, 50)),
    p99: round(percentile(values, 99)),
    max: round(values.length ? Math.max(...values) : Number.NaN),
  };
}

/** `p50 12.3 ms, p99 45.6 ms, max 50.1 ms (n=40)`. */
export function formatLatency(values: readonly number[]): string {
  const s = summarizeLatency(values);
  return `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms (n=${s.n})`;
}
