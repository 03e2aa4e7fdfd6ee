/**
 * Retry timing with full-jitter exponential backoff, shared by the outbox (a dispatch's attempts: the
 * window, `Retry-After`, `planRetry`), the ledger's hand-off pushes and the CentrePoint API clients.
 * Pure: randomness and the clock are passed in. Times are epoch milliseconds; delays are milliseconds.
 * A "window" starts when a dispatch is (re)planned: at its hand-off, replay or resume.
 */

/** The retry settings the timing reads; a target's `retry` block (config/schemas `RetryPolicy`) is one. */
export interface BackoffPolicy {
  /** Cap of the first delay, ms. */
  baseDelayMs: number;
  /** Cap of every delay, ms. */
  maxDelayMs: number;
  /** Attempts of one window before the dispatch is dead; unset: bounded by `windowMs` only. */
  maxAttempts?: number | undefined;
  /** Longest `Retry-After` honoured, ms. */
  retryAfterCapMs: number;
  /** How long after the window's first plan a retry may still be due, ms. */
  windowMs: number;
}

/** What to do after a failed attempt. */
export type RetryPlan = { kind: "retry"; at: number } | { kind: "dead" };

/** Upper bound of the delay after the n-th failed attempt of a window (n ≥ 1): base·2^(n−1), capped at maxDelayMs. */
export function delayCapMs(policy: Pick<BackoffPolicy, "baseDelayMs" | "maxDelayMs">, failedAttempts: number): number {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 40);
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exponent);
}

/** Full-jitter delay after the n-th failed attempt: uniform in [0, cap). `random` returns [0, 1). */
export function backoffDelayMs(policy: Pick<BackoffPolicy, "baseDelayMs" | "maxDelayMs">, failedAttempts: number, random: () => number): number {
  return Math.floor(random() * delayCapMs(policy, failedAttempts));
}

/**
 * Parses a `Retry-After` value (delta seconds, or an HTTP-date relative to `now`) into a delay in
 * ms, never negative; null when absent or malformed.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  const text = value?.trim();
  if (!text) return null;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[A-Za-z]{3}/.test(text)) return null; // every HTTP-date form names its month
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * Plans the next attempt after a failure. `windowAttempts` counts the attempts of this window
 * including the one that just failed. `retryAfterMs` (from a 429/503) replaces the backoff,
 * capped at retryAfterCapMs. Dead when the next attempt would fall after firstPlannedAt +
 * windowMs, or when maxAttempts is set and reached.
 */
export function planRetry(
  policy: BackoffPolicy,
  delivery: { firstPlannedAt: number; windowAttempts: number },
  now: number,
  retryAfterMs: number | null,
  random: () => number,
): RetryPlan {
  if (policy.maxAttempts !== undefined && delivery.windowAttempts >= policy.maxAttempts) return { kind: "dead" };
  const delay = retryAfterMs === null ? backoffDelayMs(policy, delivery.windowAttempts, random) : Math.min(retryAfterMs, policy.retryAfterCapMs);
  const at = now + delay;
  return at > delivery.firstPlannedAt + policy.windowMs ? { kind: "dead" } : { kind: "retry", at };
}

/** One row of the expected schedule of a window in which every attempt fails. */
export interface ScheduleRow {
  /** Attempt number, 1-based. */
  attempt: number;
  /** Upper bound of the wait before this attempt (0 for the first). */
  delayCapMs: number;
  /** Expected time of this attempt after the window started (full jitter: half of each cap). */
  expectedAtMs: number;
}

/**
 * The expected schedule of a policy when every attempt fails, for docs/delivery.md: one row per
 * attempt expected inside the window (jitter makes the real count vary), at most 1,000 rows.
 */
export function expectedSchedule(policy: BackoffPolicy): ScheduleRow[] {
  const rows: ScheduleRow[] = [{ attempt: 1, delayCapMs: 0, expectedAtMs: 0 }];
  const last = Math.min(policy.maxAttempts ?? 1000, 1000);
  for (let n = 2; n <= last; n++) {
    const prev = rows[rows.length - 1]!;
    const cap = delayCapMs(policy, n - 1);
    const expectedAtMs = prev.expectedAtMs + cap / 2;
    if (expectedAtMs > policy.windowMs) break;
    rows.push({ attempt: n, delayCapMs: cap, expectedAtMs });
  }
  return rows;
}
