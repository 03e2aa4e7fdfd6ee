/**
 * The relay's share of CentrePoint's rate limit: "500 requests per minute per source IP, sliding
 * window" (protocol spec section 6). All of a deployment's calls leave from Cloudflare addresses it
 * does not choose, so the relay keeps its own ceiling below CentrePoint's: RELAY_LIMIT_PER_MINUTE
 * (450, 90 %), leaving headroom for clock skew between the windows and for calls this budget does
 * not see.
 *
 * Algorithm (pure; the state is plain data, so a Durable Object can store it and tests need none):
 * - State: per source key (e.g. one CentrePoint source), the times of its granted requests within
 *   the last 60 s, and the time of its last refusal. A request is granted at `now` only if fewer
 *   than `limitPerMinute` requests were granted in (now − 60 s, now]; so no half-open 60 s window
 *   ever holds more than the limit.
 * - Fairness: the active sources are those granted or refused within the window, plus the asking
 *   one (a refused source is waiting, so it counts before its first grant). A
 *   source's fair share is floor(limit / active sources). A source below its share may use the
 *   whole limit; a source at or over its share may only use the limit minus `reserve` (default
 *   10 % of the limit). So unused share is available to whoever wants it, yet the last `reserve`
 *   slots, and every slot freed while the window is full, go to sources below their share: a busy
 *   source cannot starve a quiet one, and a newcomer always finds room within seconds.
 * - A refusal carries `waitMs`: the earliest time at which the same request could be granted if
 *   nothing else happened (a hint; ask again then).
 */
import { err, ok, type Result } from "../../../lib/result";
import type { ApiBudget } from "./client";

/** CentrePoint's published limit per source IP and minute. */
export const CENTREPOINT_LIMIT_PER_MINUTE = 500;

/** The relay's own ceiling (90 % of CentrePoint's). */
export const RELAY_LIMIT_PER_MINUTE = 450;

/** Length of the sliding window, ms. */
export const WINDOW_MS = 60_000;

/**
 * Per source key, epoch-ms times of granted requests in the window, oldest first (`grants`), and
 * when a source was last refused (`waiting`): a refused source counts as active for one window,
 * so it gets its share even before its first grant.
 */
export interface BudgetState {
  readonly grants: Readonly<Record<string, readonly number[]>>;
  readonly waiting: Readonly<Record<string, number>>;
}

/** Limits of `tryAcquire`. */
export interface BudgetOptions {
  /** Requests per 60 s window across all sources (default RELAY_LIMIT_PER_MINUTE). */
  limitPerMinute?: number;
  /** Slots kept for sources below their fair share (default 10 % of the limit, at least 1 when the limit allows). */
  reserve?: number;
}

/** Outcome of `tryAcquire`: the new state, and when refused how long to wait, ms. */
export type Acquired = { allowed: true; state: BudgetState } | { allowed: false; waitMs: number; state: BudgetState };

/** An empty budget state. */
export function emptyBudgetState(): BudgetState {
  return { grants: {}, waiting: {} };
}

/** The state without grants or refusals older than the window (times ≤ now − 60 s) and without idle sources. */
export function pruneBudget(state: BudgetState, now: number): BudgetState {
  const grants: Record<string, number[]> = {};
  for (const [source, times] of Object.entries(state.grants)) {
    const kept = times.filter((t) => t > now - WINDOW_MS);
    if (kept.length > 0) grants[source] = kept;
  }
  const waiting: Record<string, number> = {};
  for (const [source, at] of Object.entries(state.waiting)) if (at > now - WINDOW_MS) waiting[source] = at;
  return { grants, waiting };
}

/** Requests granted in the window ending at `now`, per source and in total. */
export function budgetUsage(state: BudgetState, now: number): { total: number; bySource: Record<string, number> } {
  const pruned = pruneBudget(state, now);
  const bySource = Object.fromEntries(Object.entries(pruned.grants).map(([k, v]) => [k, v.length]));
  return { total: Object.values(bySource).reduce((a, b) => a + b, 0), bySource };
}

/**
 * Asks for one request of `source` at `now` (epoch ms). Pure: returns the new state (the grant or
 * the refusal recorded) and never mutates the given one.
 */
export function tryAcquire(state: BudgetState, source: string, now: number, options: BudgetOptions = {}): Acquired {
  const limit = Math.max(1, Math.floor(options.limitPerMinute ?? RELAY_LIMIT_PER_MINUTE));
  const reserve = Math.min(limit - 1, Math.max(0, Math.floor(options.reserve ?? Math.max(1, Math.floor(limit / 10)))));
  const pruned = pruneBudget(state, now);
  const own = pruned.grants[source] ?? [];
  const active = new Set([...Object.keys(pruned.grants), ...Object.keys(pruned.waiting), source]).size;
  const share = Math.max(1, Math.floor(limit / active));
  const all = Object.values(pruned.grants)
    .flat()
    .sort((a, b) => a - b);
  const total = all.length;
  const ceiling = own.length < share ? limit : limit - reserve;
  if (total < ceiling) {
    const { [source]: _, ...waiting } = pruned.waiting;
    return { allowed: true, state: { grants: { ...pruned.grants, [source]: [...own, now] }, waiting } };
  }

  // Time until the k-th oldest of `times` has left the window: 0 for k ≤ 0, Infinity if there are not k.
  const leaves = (times: readonly number[], k: number): number => {
    if (k <= 0) return 0;
    return k <= times.length ? Math.max(1, times[k - 1]! + WINDOW_MS - now) : Infinity;
  };
  // Granted again once the total drops below the ceiling that applies, or (over its share) once
  // enough of its own requests leave for it to be below its share and use the full limit.
  const untilRoom = leaves(all, total - ceiling + 1);
  const untilBelowShare = own.length >= share ? Math.max(leaves(own, own.length - share + 1), leaves(all, total - limit + 1)) : Infinity;
  const waitMs = Math.min(untilRoom, untilBelowShare);
  return {
    allowed: false,
    waitMs: Number.isFinite(waitMs) ? waitMs : WINDOW_MS,
    state: { grants: pruned.grants, waiting: { ...pruned.waiting, [source]: now } },
  };
}

/** A budget held in memory (tests, or one isolate): `forSource(key)` is the client's `budget` hook. */
export interface MemoryBudget {
  /** The hook a client of `source` uses. */
  forSource(source: string): ApiBudget;
  /** The current state (a copy). */
  state(): BudgetState;
}

/** Creates an in-memory budget over `tryAcquire`, read at `now()`. */
export function createMemoryBudget(options: BudgetOptions & { now: () => number }): MemoryBudget {
  let state: BudgetState = emptyBudgetState();
  return {
    forSource(source) {
      return {
        acquire: async (): Promise<Result<void, { retryAfterMs: number }>> => {
          const r = tryAcquire(state, source, options.now(), options);
          state = r.state;
          return r.allowed ? ok(undefined) : err({ retryAfterMs: r.waitMs });
        },
      };
    },
    state: () => structuredClone(state) as BudgetState,
  };
}
