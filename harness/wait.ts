/** Waiting without busy loops, for the harness, the simulator, the suites and the bench. */

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Options of `waitFor`. */
export interface WaitOptions {
  timeoutMs: number;
  /** Pause between checks (default 100 ms). */
  intervalMs?: number;
  /** A `check` that throws ends the wait at once with its error; by default it counts as "not yet" and is retried. */
  rethrow?: boolean;
  /** Appended to the timeout message, e.g. the last lines of a process's output. */
  detail?: () => string;
}

/**
 * Polls `check` every `intervalMs` until it returns a truthy value (returned) or `timeoutMs` passes
 * (then throws, naming `what` and the last error `check` threw). Bounded in time and in checks.
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (let i = 0; i < 1_000_000; i++) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (e) {
      if (opts.rethrow) throw e;
      last = e;
    }
    if (Date.now() >= deadline) break;
    await sleep(opts.intervalMs ?? 100);
  }
  throw new Error(
    `timed out after ${opts.timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ""}${opts.detail?.() ?? ""}`,
  );
}
