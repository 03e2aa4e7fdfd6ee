import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clearConfigCache } from "../../src/config/store";
import { tallyStatements } from "../../src/lib/meter";
import { clockForEachTest } from "../support/clock";
import { fakeTarget } from "../support/outbox";
import { measure, type PerEvent, tallyLines } from "./measure";

/**
 * The rows budget of issue 17: SQLite rows written and read per accepted event (Cloudflare bills
 * both), counted exactly by the runtime (every cursor's rowsWritten/rowsRead, lib/meter.ts) over a
 * ledger and its targets' outboxes, every target answering 2xx on the first try. Deterministic:
 * the clock is faked and every alarm is fired by the test. docs/benchmarks.md has the profile. A
 * failing budget prints the figures per object and the rows of every statement.
 */

const EVENTS = 20;
/** The machine may be shared: the figures are exact, the time they take is not. */
const TIMEOUT_MS = 60_000;
/** Issue 17's goals, not met yet: docs/benchmarks.md ("Rows per event") shows where the rows go and what is left. */
const GOAL = { written3: 20, written0: 5, read3: 30 };
/**
 * The budget a change may not exceed: what this code measures (trickle 49.6 written, 131 read;
 * burst 43.5–43.6 and 93.4–94.3; no targets 10), rounded up; a burst's figures move a little with
 * how the concurrent records' pushes happen to batch, hence its margin. Lower it as rows are cut,
 * down to GOAL; a change that needs more says so (and why) in its commit message.
 */
const BUDGET = {
  trickle: { written3: 50, written0: 10, read3: 132 },
  burst: { written3: 46, written0: 10, read3: 100 },
} as const;

clockForEachTest();
beforeEach(() => {
  clearConfigCache();
  fakeTarget();
});
afterEach(() => void tallyStatements(false));

/** A failing budget's message: the figures per object, then per statement. */
function explain(m: PerEvent): string {
  const { tally, ...figures } = m;
  return `${JSON.stringify(figures)}\n${tallyLines(tally, EVENTS)}`;
}

describe("rows per accepted event", () => {
  for (const mode of ["trickle", "burst"] as const) {
    const budget = BUDGET[mode];
    it(
      `3 targets, ${mode}: at most ${budget.written3} rows written and ${budget.read3} read per event (goal ${GOAL.written3} and ${GOAL.read3})`,
      async () => {
        const m = await measure({ targets: 3, events: EVENTS, mode });
        const detail = explain(m);
        expect(m.rowsWritten, detail).toBeLessThanOrEqual(budget.written3);
        expect(m.rowsRead, detail).toBeLessThanOrEqual(budget.read3);
      },
      TIMEOUT_MS,
    );

    it(
      `no targets, ${mode}: at most ${budget.written0} rows written per event (goal ${GOAL.written0})`,
      async () => {
        const m = await measure({ targets: 0, events: EVENTS, mode });
        expect(m.rowsWritten, explain(m)).toBeLessThanOrEqual(budget.written0);
      },
      TIMEOUT_MS,
    );
  }
});
