import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { admin, freshId, ledgerOf, postWebhook, putSource, putTarget } from "../helpers";
import { fakeTarget, fireAlarm, outboxOf, useClock } from "../outbox/fixtures";

/**
 * Review finding 3: events that arrived while a target's document was invalid were never planned
 * for it. Now they are planned and held; once the document is fixed, those its filter wants are
 * delivered and the rest are marked not wanted (never sent).
 */

beforeEach(() => void useClock());
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

async function targetState(source: string, id: string, target: string) {
  const res = await admin(`/deliveries/${source}/${id}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { targets: { target: string; dispatch: { state: string } | null }[] };
  return body.targets.find((t) => t.target === target)?.dispatch?.state ?? null;
}

async function setup() {
  const source = freshId();
  const target = freshId("t");
  await putSource(source);
  // Invalid: events must be a list of kind globs.
  await putTarget(target, { url: "https://edc.example/hooks", events: "upload.completed" });
  const edc = fakeTarget();
  vi.spyOn(console, "warn").mockImplementation(() => undefined);
  const id = crypto.randomUUID();
  expect((await postWebhook(source, { deliveryId: id })).status).toBe(200);
  await runDurableObjectAlarm(ledgerOf(source)); // hand-off to the outbox
  await fireAlarm(outboxOf(target)); // the outbox reads the invalid document and holds
  return { source, target, id, edc };
}

describe("a target whose document is invalid when events arrive", () => {
  it("holds those events instead of dropping them", async () => {
    const { source, target, id, edc } = await setup();
    expect(await targetState(source, id, target)).toBe("held");
    expect(edc.sent).toHaveLength(0);
  });

  it("delivers them once the document is fixed and its filter wants them", async () => {
    const { source, target, id, edc } = await setup();
    const fixed = await admin(`/targets/${target}`, { method: "PUT", body: JSON.stringify({ url: "https://edc.example/hooks", events: ["upload.*"] }) });
    expect(fixed.status).toBe(200);
    await fireAlarm(outboxOf(target));
    expect(edc.sent.map((s) => s.headers["webhook-id"])).toEqual([id]);
    expect(await targetState(source, id, target)).toBe("delivered");
  });

  it("marks them not wanted, and never sends them, when the fixed filter does not want them", async () => {
    const { source, target, id, edc } = await setup();
    const fixed = await admin(`/targets/${target}`, {
      method: "PUT",
      body: JSON.stringify({ url: "https://edc.example/hooks", events: ["daily_statistics.*"] }),
    });
    expect(fixed.status).toBe(200);
    await fireAlarm(outboxOf(target));
    expect(edc.sent).toHaveLength(0);
    expect(await targetState(source, id, target)).toBe("not_wanted");
    const health = (await (await admin(`/targets/${target}/health`)).json()) as { counts: Record<string, number> };
    expect(health.counts).toMatchObject({ not_wanted: 1, held: 0, pending: 0 });
    // A replay does not send it either.
    await admin(`/deliveries/${source}/${id}/replay`, { method: "POST", body: "{}" });
    await fireAlarm(outboxOf(target));
    expect(edc.sent).toHaveLength(0);
  });
});
