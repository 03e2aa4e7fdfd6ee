import { countersByHour, HOUR_MS, hourOf } from "./counters";

/**
 * Hourly trends from an object's counter snapshots (lib/counters.ts "Hourly snapshots"): each
 * measure gets the counters at the end of the hour before and at the end of the hour, and gives
 * that hour's value (a count's difference, a percentile from histogram buckets), or null.
 */
export type Counters = Record<string, number>;
export type Measure = (before: Counters, after: Counters) => number | null;

/** One hour of a trend: its start (epoch ms, UTC) and a value per measure. */
export interface TrendPoint {
  at: number;
  values: Record<string, number | null>;
}

/** Trends may look back at most this far: the snapshots kept (90 days). */
export const MAX_TREND_HOURS = 90 * 24;

/** The last `hours` hours up to and including the current one, oldest first. */
export function hourlyTrend(sql: SqlStorage, hours: number, now: number, measures: Record<string, Measure>): TrendPoint[] {
  const to = hourOf(now);
  const { before, hours: rows } = countersByHour(sql, to - hours + 1, to);
  let prev = before;
  return rows.map(({ hour, values }) => {
    const point: TrendPoint = { at: hour * HOUR_MS, values: {} };
    for (const [name, measure] of Object.entries(measures)) point.values[name] = measure(prev, values);
    prev = values;
    return point;
  });
}

/** The sum of the counters whose names start with `prefix` (and, when given, match `rest`). */
export function sumOf(c: Counters, prefix: string, rest: RegExp = /.*/): number {
  let n = 0;
  for (const [name, v] of Object.entries(c)) if (name.startsWith(prefix) && rest.test(name.slice(prefix.length))) n += v;
  return n;
}

/** A measure: how much the counters matching `prefix` (and `rest`) grew in the hour; never below 0 (a correction is not activity). */
export const growth =
  (prefix: string, rest?: RegExp): Measure =>
  (before, after) =>
    Math.max(0, sumOf(after, prefix, rest) - sumOf(before, prefix, rest));

/**
 * A measure: the q-quantile (0..1) of the observations a histogram gained in the hour, as the upper
 * bound of the bucket it falls in (bucket i is `${prefix}${i}`, bounds in `boundsMs`; the overflow
 * bucket answers its lower bound), null when the hour had none. A bucket estimate, not an exact value.
 */
export const quantile =
  (prefix: string, boundsMs: readonly number[], q: number): Measure =>
  (before, after) => {
    const gained = boundsMs.map((_, i) => Math.max(0, (after[`${prefix}${i}`] ?? 0) - (before[`${prefix}${i}`] ?? 0)));
    gained.push(Math.max(0, (after[`${prefix}${boundsMs.length}`] ?? 0) - (before[`${prefix}${boundsMs.length}`] ?? 0)));
    const total = gained.reduce((a, b) => a + b, 0);
    if (total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let i = 0; i < gained.length; i++) {
      seen += gained[i]!;
      if (seen >= rank) return boundsMs[Math.min(i, boundsMs.length - 1)]!;
    }
    return boundsMs[boundsMs.length - 1]!;
  };
