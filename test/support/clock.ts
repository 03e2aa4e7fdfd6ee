import { afterEach, beforeEach, vi } from "vitest";

/**
 * Test time: Date is faked and starts far in the future, so alarms armed at "now" never fire on
 * their own (real time is decades earlier); tests fire them with runDurableObjectAlarm.
 */
export const T0 = Date.UTC(2100, 0, 1);

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** Moves the faked clock forward by `ms`. */
export type Advance = (ms: number) => void;

const advance: Advance = (ms) => void vi.setSystemTime(Date.now() + ms);

/** Fakes Date (only Date: timers stay real) at T0; returns a way to move it. For hooks of their own; a test file wants `clockForEachTest`. */
export function useClock(): { advance: Advance } {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
  return { advance };
}

/** Options of `clockForEachTest`. */
export interface ClockOptions {
  /** Console levels silenced during each test (default `["log"]`: archive and pruning log info lines). */
  quiet?: readonly ("log" | "warn")[];
}

/**
 * The controlled clock for every test of the calling scope (a file, or a `describe`): Date faked at
 * T0 before each test, real timers and every mock restored after each. Call once at the top of the
 * scope; `advance` moves the clock.
 */
export function clockForEachTest(options: ClockOptions = {}): { advance: Advance } {
  beforeEach(() => {
    useClock();
    for (const level of options.quiet ?? ["log"]) vi.spyOn(console, level).mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
  return { advance };
}
