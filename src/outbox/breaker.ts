import { type BreakerPolicy, breakerSchema } from "../config/schemas";

/**
 * Per-target circuit breaker, a pure state machine. Times are epoch ms.
 *
 *   closed ──(threshold consecutive failures)──▶ open ──(now ≥ probeAt)──▶ half-open: one probe
 *   half-open ──probe succeeds──▶ closed          half-open ──probe fails──▶ open, cool-down doubled
 *
 * Any success closes it. Failures of attempts sent before it opened (stragglers of a batch) are
 * counted but do not push the probe time.
 */
export interface BreakerState {
  /** Consecutive failed attempts. */
  failures: number;
  /** When the next probe may go; null = closed. */
  probeAt: number | null;
  /** Current cool-down (ms); 0 while closed. */
  cooldownMs: number;
}

export type BreakerStatus = "closed" | "open" | "half_open";

/** Default thresholds (the target schema's defaults): open after 5 consecutive failures; first cool-down 60 s, doubling up to 1 h. */
export const BREAKER_DEFAULTS: BreakerPolicy = breakerSchema.parse({});

/** A closed breaker. */
export const CLOSED_BREAKER: BreakerState = { failures: 0, probeAt: null, cooldownMs: 0 };

/** The breaker's status at `now`. */
export function breakerStatus(b: BreakerState, now: number): BreakerStatus {
  if (b.probeAt === null) return "closed";
  return now >= b.probeAt ? "half_open" : "open";
}

/** How many attempts may go now: all due ones, a single probe, or none. */
export function breakerAllows(b: BreakerState, now: number): "all" | "probe" | "none" {
  const status = breakerStatus(b, now);
  return status === "closed" ? "all" : status === "half_open" ? "probe" : "none";
}

/** After a failed attempt; `wasProbe` when it was the half-open probe. */
export function breakerFailure(b: BreakerState, now: number, wasProbe: boolean, opts: BreakerPolicy = BREAKER_DEFAULTS): BreakerState {
  const failures = b.failures + 1;
  if (b.probeAt === null) {
    return failures >= opts.threshold ? { failures, probeAt: now + opts.cooldownMs, cooldownMs: opts.cooldownMs } : { ...b, failures };
  }
  if (!wasProbe) return { ...b, failures };
  const cooldownMs = Math.min(b.cooldownMs * 2, opts.maxCooldownMs);
  return { failures, probeAt: now + cooldownMs, cooldownMs };
}

/**
 * The breaker after one attempt's result: a success closes it; a failure counts unless its class is
 * `config` or `transform` (the relay's own configuration or the target's expression failed, not the
 * target). Returns `b` itself when unchanged.
 */
export function breakerAfter(
  b: BreakerState,
  result: { ok: boolean; errorClass: string | null },
  now: number,
  wasProbe: boolean,
  opts: BreakerPolicy = BREAKER_DEFAULTS,
): BreakerState {
  if (result.ok) return CLOSED_BREAKER;
  return result.errorClass === "config" || result.errorClass === "transform" ? b : breakerFailure(b, now, wasProbe, opts);
}
