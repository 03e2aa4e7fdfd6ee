import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { freshId, ledgerOf, postWebhook, putSource, putTarget } from "../support/helpers";
import { clockForEachTest } from "../support/clock";
import { outboxOf } from "../support/outbox";

/**
 * Review finding 2: a pending hand-off could be stranded with no alarm (the duplicate path never
 * re-armed, and an exception in the ledger's alarm ended it for good after the platform's retries).
 */

const { advance } = clockForEachTest({ quiet: [] });

/** The ledger's push seam: makes every push to an outbox fail until the object is evicted. */
function failPushes(ledger: ReturnType<typeof ledgerOf>) {
  return runInDurableObject(ledger, (instance) => {
    (instance as unknown as { outboxFor: () => unknown }).outboxFor = () => ({ acceptHandoff: () => Promise.reject(new Error("outbox unavailable")) });
  });
}

async function sourceWithTarget() {
  const source = freshId();
  const target = freshId("t");
  await putSource(source);
  // Only this test's source: a target left by an earlier test of this file must not get (and retry) its hand-offs.
  await putTarget(target, { url: "https://edc.example/hooks", sources: [source] });
  return { source, target, ledger: ledgerOf(source) };
}

describe("stranded hand-offs", () => {
  it("re-arms the alarm when CentrePoint resends a delivery whose hand-off is still pending", async () => {
    const { source, target, ledger } = await sourceWithTarget();
    const id = crypto.randomUUID();
    // The push record starts fails, so the hand-off stays pending; then its alarm is lost.
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    await failPushes(ledger);
    expect((await postWebhook(source, { deliveryId: id })).status).toBe(200);
    expect(await runDurableObjectAlarm(ledger)).toBe(true); // waits for that push to settle
    await runInDurableObject(ledger, (_i, state) => state.storage.deleteAlarm());
    expect(await runInDurableObject(ledger, (_i, state) => state.storage.getAlarm())).toBeNull();
    await evictDurableObject(ledger); // the outbox answers again

    const resend = await postWebhook(source, { deliveryId: id });
    expect(await resend.json()).toMatchObject({ status: "duplicate" });
    const alarm = await runInDurableObject(ledger, (_i, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    vi.setSystemTime(Math.max(alarm!, Date.now()));
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    expect(await outboxOf(target).getDispatch(source, id)).not.toBeNull();
  });

  it("catches an error the alarm's own steps throw: logs it and re-arms 30 s later instead of ending the alarm", async () => {
    const { source, ledger } = await sourceWithTarget();
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    expect((await postWebhook(source, { deliveryId: crypto.randomUUID() })).status).toBe(200);
    // A step of the alarm that nothing below it catches: only the alarm's catch-all stands between it and the runtime.
    await runInDurableObject(ledger, (instance) => {
      (instance as unknown as { runDueJobs: () => Promise<void> }).runDueJobs = () => Promise.reject(new Error("job table unreadable"));
    });
    await runInDurableObject(ledger, (_i, state) => state.storage.setAlarm(Date.now()));
    const ranAt = Date.now();
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    expect(errors.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringContaining("ledger alarm failed; retrying later"));
    expect(errors.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringContaining("job table unreadable"));
    expect(await runInDurableObject(ledger, (_i, state) => state.storage.getAlarm())).toBe(ranAt + 30_000);
  });

  it("keeps a hand-off whose row the push cannot read pending, with its alarm, and hands it off once readable", async () => {
    const { source, target, ledger } = await sourceWithTarget();
    const id = crypto.randomUUID();
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    await failPushes(ledger); // the first push fails, so the hand-off is still pending
    await postWebhook(source, { deliveryId: id });
    expect(await runDurableObjectAlarm(ledger)).toBe(true); // waits for that push to settle; nothing is due yet
    // A corrupted row makes the hand-off code fail in a way it does not expect.
    await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("UPDATE deliveries SET headers = 'not json' WHERE delivery_id = ?", id));
    await evictDurableObject(ledger);
    vi.setSystemTime(Math.max((await runInDurableObject(ledger, (_i, state) => state.storage.getAlarm()))!, Date.now()));
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    const alarm = await runInDurableObject(ledger, (_i, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeGreaterThan(Date.now());
    // Once the row is readable again, a run after the retry delay (jittered, at most 5 min) hands it off.
    await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("UPDATE deliveries SET headers = '{}' WHERE delivery_id = ?", id));
    advance(10 * 60_000);
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    expect(await outboxOf(target).getDispatch(source, id)).not.toBeNull();
  });
});
