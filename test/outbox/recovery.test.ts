import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearConfigCache } from "../../src/config/store";
import { WATCHDOG_MARGIN_MS, WATCHDOG_REFRESH_MS } from "../../src/outbox/outbox";
import { useClock } from "../support/clock";
import { fakeTarget, fireAlarm, makeItem, newTarget, outboxOf, sqlIn, expectCountersMatchRows } from "../support/outbox";

/**
 * The object dies while an attempt is in flight (a deploy, an eviction, a crash), simulated with
 * abortAllDurableObjects() (evictDurableObject would wait for the hanging attempt to drain). Its
 * own file, because the abort resets every object of the test file.
 */

let clock: ReturnType<typeof useClock>;

beforeEach(() => {
  clock = useClock();
  clearConfigCache();
});

afterEach(async () => {
  await abortAllDurableObjects(); // ends any attempt still hanging
  await expectCountersMatchRows();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/**
 * Starts an alarm whose fetch never answers and returns once the attempt is in flight. It polls the
 * object's storage (bounded) rather than awaiting a promise resolved inside the object, whose
 * continuation would run in the object's I/O context.
 */
async function hangMidAttempt(doc: Record<string, unknown> = {}, queued = 0) {
  const target = fakeTarget(() => new Promise<Response>(() => {}));
  const t = await newTarget(doc);
  const item = makeItem();
  await t.stub.acceptHandoff(t.id, [item, ...Array.from({ length: queued }, () => makeItem())]);
  // As the platform does: the alarm is consumed when its handler starts. The handler is started
  // inside the object and not awaited, so the test's request ends while the attempt hangs.
  await runInDurableObject(t.stub, async (outbox, state) => {
    await state.storage.deleteAlarm();
    void outbox.alarm();
  });
  for (let i = 0; i < 100 && target.sent.length === 0; i++) await sqlIn(t.stub, "SELECT 1");
  expect(target.sent).toHaveLength(1);
  return { ...t, item, target };
}

describe("an object that dies mid-delivery", () => {
  it("keeps a replayed dispatch's earlier success when the resend dies mid-attempt, and delivers it again", async () => {
    // The first success lives on the dispatch's row (transitions.ts IN_ROW); the replay's claim must
    // move it to the attempt log before the new attempt takes its place, in the same transaction.
    const target = fakeTarget();
    const { id, stub } = await newTarget();
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    expect((await stub.replay(item.source, item.deliveryId)).replayed).toBe(true);
    target.answer(() => new Promise<Response>(() => {}));
    await runInDurableObject(stub, async (outbox, state) => {
      await state.storage.deleteAlarm();
      void outbox.alarm();
    });
    for (let i = 0; i < 100 && target.sent.length < 2; i++) await sqlIn(stub, "SELECT 1");
    expect(target.sent).toHaveLength(2);
    await abortAllDurableObjects();
    const again = outboxOf(id);
    target.answer(() => new Response("ok"));
    expect(await fireAlarm(again)).toBe(true);
    const got = await again.getDispatch(item.source, item.deliveryId);
    expect(got?.dispatch.state).toBe("delivered");
    expect(got?.attempts.map((a) => [a.n, a.outcome])).toEqual([
      [1, "success"],
      [2, "interrupted"],
      [3, "success"],
    ]);
    expect(target.sent).toHaveLength(3);
  });

  it("has written the attempt as in_flight before the fetch", async () => {
    const { stub, item } = await hangMidAttempt();
    // Read from storage, not from the instance: the attempt is kept on the dispatch's row (transitions.ts IN_ROW).
    expect(await sqlIn(stub, "SELECT json_extract(attempt, '$.outcome') AS outcome FROM dispatches")).toEqual([{ outcome: "in_flight" }]);
    expect(await sqlIn(stub, "SELECT state FROM dispatches")).toEqual([{ state: "delivering" }]);
    expect((await stub.getDispatch(item.source, item.deliveryId))?.attempts.map((a) => a.outcome)).toEqual(["in_flight"]);
  });

  it("declares the event dead when its window ended while the lost attempt was in flight", async () => {
    const { id, item, target } = await hangMidAttempt({ retry: { windowMs: 60_000 } });
    await abortAllDurableObjects();
    const stub = outboxOf(id);
    clock.advance(120_000);
    await fireAlarm(stub);
    const got = await stub.getDispatch(item.source, item.deliveryId);
    expect(got?.dispatch.state).toBe("dead");
    expect(got?.attempts.map((a) => a.outcome)).toEqual(["interrupted"]);
    expect(target.sent).toHaveLength(1);
  });

  it("is woken by a watchdog one attempt's timeout (plus a margin) away, however large the claimed batch", async () => {
    // 40 claimed with one slot of 5 s each: the whole batch would take 200 s, the watchdog must not wait for it.
    const { stub } = await hangMidAttempt({ concurrency: 1, timeoutMs: 5_000 }, 39);
    expect(await sqlIn(stub, "SELECT COUNT(*) AS n FROM dispatches WHERE state = 'delivering'")).toEqual([{ n: 40 }]);
    const alarm = await runInDurableObject(stub, (_i, state) => state.storage.getAlarm());
    expect(alarm).toBe(Date.now() + 5_000 + WATCHDOG_REFRESH_MS + WATCHDOG_MARGIN_MS);
  });

  it("delivers the event on the next alarm and marks the lost attempt interrupted", async () => {
    const { id, item, target } = await hangMidAttempt();
    await abortAllDurableObjects();
    const stub = outboxOf(id); // stubs of an aborted object are broken for good
    target.answer(() => new Response("ok"));
    expect(await fireAlarm(stub)).toBe(true); // the watchdog alarm armed before the fetch
    const got = await stub.getDispatch(item.source, item.deliveryId);
    expect(got?.dispatch.state).toBe("delivered");
    expect(got?.attempts.map((a) => a.outcome)).toEqual(["interrupted", "success"]);
    expect(target.sent.map((s) => s.headers["webhook-id"])).toEqual([item.deliveryId, item.deliveryId]);
  });
});
