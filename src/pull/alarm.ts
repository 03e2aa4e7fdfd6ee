import { log } from "../lib/log";

/** Wait before an alarm runs again after an unexpected error. */
export const ERROR_RETRY_MS = 30_000;

/** A pull-side object's alarm run: start it (runs started meanwhile share it), or ask whether one is running. */
export interface AlarmRunner {
  run(): Promise<void>;
  running(): boolean;
}

/**
 * The alarm of a pull-side object ("one alarm, many rows"): `work`, then the alarm armed at `next()`
 * (deleted when nothing waits). Never throws: an unexpected error is logged as `<what> failed` and the
 * alarm re-armed ERROR_RETRY_MS later.
 */
export function alarmRunner(storage: DurableObjectStorage, what: string, work: () => Promise<void>, next: () => number | null): AlarmRunner {
  let current: Promise<void> | null = null;
  const once = async () => {
    let retryAt: number | null = null;
    try {
      await work();
    } catch (e) {
      log("error", `${what} failed; retrying later`, { error: e instanceof Error ? e.message : String(e) });
      retryAt = Date.now() + ERROR_RETRY_MS;
    }
    const at = retryAt ?? next();
    if (at === null) await storage.deleteAlarm();
    else await storage.setAlarm(at);
  };
  return { run: () => (current ??= once().finally(() => (current = null))), running: () => current !== null };
}
