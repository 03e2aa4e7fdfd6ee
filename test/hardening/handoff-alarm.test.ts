import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { freshId, ledgerOf, postWebhook, putSource, putTarget } from "../helpers";
import { outboxOf, useClock } from "../outbox/fixtures";

/**
 * Review finding 2: a pending hand-off could be stranded with no alarm (the duplicate path never
 * re-armed, and an exception in the ledger's alarm ended it for good after the platform's retries).
 */

beforeEach(() => void useClock());
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

async function sourceWithTarget() {
  const source = freshId();
  const target = freshId("t");
  await putSource(source);
  await putTarget(target, { url: "https://edc.example/hooks" });
  return { source, target, ledger: ledgerOf(source) };
}

describe("stranded hand-offs", () => {
  it("re-arms the alarm when CentrePoint resends a delivery whose hand-off is still pending", async () => {
    const { source, target, ledger } = await sourceWithTarget();
    const id = crypto.randomUUID();
    expect((await postWebhook(source, { deliveryId: id })).status).toBe(200);
    await runInDurableObject(ledger, (_i, state) => state.storage.deleteAlarm());
    expect(await runInDurableObject(ledger, (_i, state) => state.storage.getAlarm())).toBeNull();

    const resend = await postWebhook(source, { deliveryId: id });
    expect(await resend.json()).toMatchObject({ status: "duplicate" });
    expect(await runInDurableObject(ledger, (_i, state) => state.storage.getAlarm())).not.toBeNull();
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    expect(await outboxOf(target).getDispatch(source, id)).not.toBeNull();
  });

  it("keeps its alarm after an unexpected error and records it, instead of throwing", async () => {
    const { source, target, ledger } = await sourceWithTarget();
    const id = crypto.randomUUID();
    await postWebhook(source, { deliveryId: id });
    // A corrupted row makes the hand-off code fail in a way it does not expect.
    await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("UPDATE deliveries SET headers = 'not json' WHERE delivery_id = ?", id));
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    const alarm = await runInDurableObject(ledger, (_i, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeGreaterThan(Date.now());
    // Once the row is readable again, the next run after the retry delay hands it off.
    await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("UPDATE deliveries SET headers = '{}' WHERE delivery_id = ?", id));
    vi.setSystemTime(alarm!);
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    expect(await outboxOf(target).getDispatch(source, id)).not.toBeNull();
  });
});
