import { describe, expect, it } from "vitest";
import { targetSchema } from "../../src/config/schemas";
import { alarmAt, fakeTarget, fireAlarm, makeItem, newTarget, outboxTestsWithCounters } from "../support/outbox";

const clock = outboxTestsWithCounters();

/** Most starts in any 60 s window [t, t + 60 s) that begins at a start. */
function busiestMinute(starts: readonly number[]): number {
  return Math.max(0, ...starts.map((s) => starts.filter((t) => t >= s && t < s + 60_000).length));
}

describe("rateLimit", () => {
  it("is validated: perMinute 1 to 600", () => {
    expect(targetSchema.safeParse({ url: "https://edc.example/hooks", rateLimit: { perMinute: 0 } }).success).toBe(false);
    expect(targetSchema.safeParse({ url: "https://edc.example/hooks", rateLimit: { perMinute: 601 } }).success).toBe(false);
    expect(targetSchema.safeParse({ url: "https://edc.example/hooks", rateLimit: { perMinute: 600 } }).success).toBe(true);
  });

  it("over two simulated minutes, with retries and replays, never starts more than n sends in any 60 s window, evenly spaced", async () => {
    const n = 12;
    const starts: number[] = [];
    // Every third request fails (500), so retries (100 ms backoff) compete for the same slots.
    const target = fakeTarget((_, i) => (starts.push(Date.now()), i % 3 === 0 ? new Response("no", { status: 500 }) : new Response("ok")));
    const { id, stub } = await newTarget({ rateLimit: { perMinute: n }, concurrency: 6, retry: { baseDelayMs: 100, maxDelayMs: 1_000 } });
    const first = Array.from({ length: 10 }, () => makeItem());
    await stub.acceptHandoff(id, first);
    const started = Date.now();
    for (let step = 0; step < 2 * 60 * 4 && Date.now() - started < 120_000; step++) {
      // A replay of everything delivered so far, once, a minute in.
      if (step === 240) await stub.replayWhere({ state: "delivered", limit: 100 });
      const at = await alarmAt(stub);
      if (at !== null && at <= Date.now()) await fireAlarm(stub);
      clock.advance(250);
    }
    expect(target.sent.length).toBe(starts.length);
    // It kept sending in both minutes: the first ones, their retries, then the replays.
    expect(starts.filter((t) => t < started + 60_000).length).toBeGreaterThanOrEqual(n - 1);
    expect(starts.filter((t) => t >= started + 60_000).length).toBeGreaterThanOrEqual(first.length);
    const ids = target.sent.map((s) => s.headers["webhook-id"]);
    expect(new Set(ids).size).toBe(first.length);
    expect(busiestMinute(starts)).toBeLessThanOrEqual(n);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(60_000 / n); // smooth: no burst
  }, 60_000);

  it("costs a target without rateLimit nothing: a batch goes out at once", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(
      id,
      Array.from({ length: 20 }, () => makeItem()),
    );
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(20);
  });
});
