import { describe, expect, it } from "vitest";
import {
  budgetUsage,
  createMemoryBudget,
  emptyBudgetState,
  RELAY_LIMIT_PER_MINUTE,
  tryAcquire,
  WINDOW_MS,
  type BudgetOptions,
  type BudgetState,
} from "../../../../src/providers/centrepoint/api/budget";
import { getWebhookRegistration } from "../../../../src/providers/centrepoint/api/endpoints";
import { createHarness, T0 } from "./setup";

/** The most grants found in any half-open 60 s window [t, t + 60 s). */
function maxInAnyWindow(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j]! < sorted[i]! + WINDOW_MS) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

/**
 * Event-driven simulation: each source asks at its `startAt`, again `gapMs` after a grant, and
 * again after the `waitMs` of a refusal, until `endAt`. Returns the grant times per source.
 */
function simulate(sources: Array<{ name: string; startAt: number; gapMs: number }>, endAt: number, options: BudgetOptions = {}): Record<string, number[]> {
  let state: BudgetState = emptyBudgetState();
  const next = new Map(sources.map((s) => [s.name, s.startAt]));
  const grants: Record<string, number[]> = Object.fromEntries(sources.map((s) => [s.name, []]));
  for (let step = 0; step < 200_000; step++) {
    const [name, at] = [...next.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0]!;
    if (at >= endAt) break;
    const r = tryAcquire(state, name, at, options);
    state = r.state;
    if (r.allowed) {
      grants[name]!.push(at);
      next.set(name, at + sources.find((s) => s.name === name)!.gapMs);
    } else {
      expect(r.waitMs).toBeGreaterThan(0);
      next.set(name, at + r.waitMs);
    }
  }
  return grants;
}

describe("tryAcquire", () => {
  it("grants up to the limit in a window, then says how long to wait", () => {
    let state: BudgetState = emptyBudgetState();
    for (let i = 0; i < 5; i++) {
      const r = tryAcquire(state, "a", T0 + i * 1000, { limitPerMinute: 5 });
      expect(r.allowed).toBe(true);
      state = r.state;
    }
    const refused = tryAcquire(state, "a", T0 + 10_000, { limitPerMinute: 5 });
    expect(refused).toMatchObject({ allowed: false, waitMs: 50_000 });
    expect(tryAcquire(state, "a", T0 + 60_000, { limitPerMinute: 5 }).allowed).toBe(true);
  });

  it("does not change the state it is given", () => {
    const state: BudgetState = { grants: { a: [T0] }, waiting: { b: T0 } };
    const copy = structuredClone(state);
    tryAcquire(state, "a", T0 + 1, {});
    tryAcquire(state, "b", T0 + 1, {});
    expect(state).toEqual(copy);
  });

  it("defaults to the relay's ceiling of 450, below CentrePoint's 500", () => {
    const grants = simulate([{ name: "a", startAt: T0, gapMs: 1 }], T0 + 30_000);
    expect(grants.a).toHaveLength(RELAY_LIMIT_PER_MINUTE);
  });

  it("never grants more than the limit in any 60 s window over a long burst", () => {
    const grants = simulate(
      [
        { name: "a", startAt: T0, gapMs: 3 },
        { name: "b", startAt: T0 + 7_000, gapMs: 50 },
        { name: "c", startAt: T0 + 95_000, gapMs: 1 },
      ],
      T0 + 300_000,
    );
    const all = Object.values(grants).flat();
    expect(all.length).toBeGreaterThan(4 * RELAY_LIMIT_PER_MINUTE);
    expect(maxInAnyWindow(all)).toBeLessThanOrEqual(RELAY_LIMIT_PER_MINUTE);
  });

  it("a newcomer is served before a source over its share as slots free up", () => {
    let state: BudgetState = emptyBudgetState();
    for (let i = 0; i < 10; i++) state = tryAcquire(state, "a", T0 + i, { limitPerMinute: 10, reserve: 1 }).state;
    const refused = tryAcquire(state, "b", T0 + 100, { limitPerMinute: 10, reserve: 1 });
    expect(refused.allowed).toBe(false);
    state = refused.state; // b is now waiting, so it counts as active
    // a's first request has left the window: the free slot goes to b, not to a
    const at = T0 + WINDOW_MS;
    expect(tryAcquire(state, "a", at, { limitPerMinute: 10, reserve: 1 }).allowed).toBe(false);
    expect(tryAcquire(state, "b", at, { limitPerMinute: 10, reserve: 1 }).allowed).toBe(true);
  });

  it("shares the window fairly between two busy sources", () => {
    const grants = simulate(
      [
        { name: "a", startAt: T0, gapMs: 1 },
        { name: "b", startAt: T0 + 20_000, gapMs: 1 },
      ],
      T0 + 240_000,
    );
    const inLastWindow = (times: number[]) => times.filter((t) => t >= T0 + 180_000).length;
    const a = inLastWindow(grants.a!);
    const b = inLastWindow(grants.b!);
    expect(a + b).toBeLessThanOrEqual(RELAY_LIMIT_PER_MINUTE);
    expect(a + b).toBeGreaterThan(RELAY_LIMIT_PER_MINUTE * 0.85);
    expect(Math.min(a, b) / Math.max(a, b)).toBeGreaterThan(0.8);
  });

  it("lets one source use the share another leaves unused", () => {
    const grants = simulate(
      [
        { name: "busy", startAt: T0, gapMs: 1 },
        { name: "quiet", startAt: T0, gapMs: 6_000 },
      ],
      T0 + 180_000,
    );
    const last = (times: number[]) => times.filter((t) => t >= T0 + 120_000).length;
    expect(last(grants.quiet!)).toBe(10);
    expect(last(grants.busy!)).toBeGreaterThan(RELAY_LIMIT_PER_MINUTE * 0.85);
  });

  it("budgetUsage counts requests in the window only", () => {
    expect(budgetUsage({ grants: { a: [T0, T0 + 1], b: [T0 + 30_000] }, waiting: {} }, T0 + 60_000)).toEqual({ total: 2, bySource: { a: 1, b: 1 } });
  });
});

describe("createMemoryBudget", () => {
  it("limits a client: past the window's limit a call waits or returns rate_limited", async () => {
    let h: ReturnType<typeof createHarness>;
    const budget = createMemoryBudget({ now: () => h.now(), limitPerMinute: 3, reserve: 0 });
    h = createHarness({ client: { budget: budget.forSource("study-189") } });
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true); // token + call
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true);
    const third = await getWebhookRegistration(h.api, 189, 74);
    expect(third).toMatchObject({ ok: false, error: { kind: "rate_limited", retryAfterMs: 60_000 } });
    expect(budget.state()).toEqual({ grants: { "study-189": [T0, T0, T0] }, waiting: { "study-189": T0 } });
    h.clock.t += 40_000;
    // 20 s to wait now: within maxWaitMs, so the client sleeps and then succeeds
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true);
    expect(h.sleeps).toEqual([20_000]);
  });
});
