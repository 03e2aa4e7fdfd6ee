import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { trailOf } from "../../src/audit/audit";
import type { AuditLine } from "../../src/audit/format";
import { checkAllLedgers } from "../../src/ledger/scheduled";
import { freshId, ledgerOf, putSource } from "../support/helpers";
import { clockForEachTest, DAY, HOUR, T0 } from "../support/clock";
import { recordInput, runDue, useSmallSegments } from "../support/ledger";
import { fakeTarget, fireAlarm, makeItem, newTarget } from "../support/outbox";
import { tickReconcilers } from "../../src/reconcile/scheduled";
import { newReconciledSource, useFakeCentrePoint } from "../support/reconcile";

const clock = clockForEachTest();

/** The trail's entries about `object`, newest first. */
async function entriesAbout(object: string): Promise<AuditLine[]> {
  return (await trailOf(env).list({ object, limit: 50 })).items;
}

describe("automatic actions in the audit trail (actor system)", () => {
  it("records retention pruning once per run, with what it pruned", async () => {
    const source = freshId("ret");
    await putSource(source, { retention: { bodyDays: 1, recordDays: 7 } });
    const ledger = ledgerOf(source);
    await useSmallSegments(ledger);
    for (let i = 1; i <= 3; i++) {
      await ledger.record(recordInput({ source, deliveryId: `d-${i}`, receivedAt: Date.now(), body: new TextEncoder().encode(`{"n":${i}}`) }));
      clock.advance(1_000);
    }
    vi.setSystemTime(T0 + HOUR);
    await runDue(ledger); // archives 1-3
    vi.setSystemTime(T0 + DAY + HOUR);
    await runDue(ledger); // prunes the three bodies
    const entries = await entriesAbout(`source:${source}`);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor: "system", role: "system", via: "system", action: "source.retention-prune", requestId: null, address: null });
    expect(JSON.parse(entries[0]!.after!)).toMatchObject({ bodies: 3, records: 0, retention: { bodyDays: 1 } });
  });

  it("records the daily integrity cron once per run", async () => {
    const source = freshId("cron");
    await putSource(source);
    await checkAllLedgers(env);
    const [entry] = (await trailOf(env).list({ action: "ledger.integrity-check", limit: 1 })).items;
    expect(entry).toMatchObject({ actor: "system", via: "cron", action: "ledger.integrity-check" });
    expect(JSON.parse(entry!.after!)).toMatchObject({ broken: [] });
    expect(JSON.parse(entry!.after!).sources).toBeGreaterThanOrEqual(1);
  });

  it("records each reconciliation the 5-minute cron starts (via cron), and none when nothing is due", async () => {
    useFakeCentrePoint();
    const source = await newReconciledSource();
    await tickReconcilers(env, Date.now());
    await tickReconcilers(env, Date.now()); // a run is in progress: nothing starts
    const entries = await entriesAbout(`source:${source}`);
    expect(entries.map((e) => [e.actor, e.via, e.action, e.reason])).toEqual([["system", "cron", "source.reconcile", "scheduled"]]);
  });

  it("records a hold by a 410 and a breaker that opens, once per change, not per event", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const gone = await newTarget({ url: "https://edc.example/gone" });
    fakeTarget(async () => new Response("gone", { status: 410 }));
    await gone.stub.acceptHandoff(gone.id, [makeItem(), makeItem()]);
    await fireAlarm(gone.stub);
    await fireAlarm(gone.stub);
    const holds = await entriesAbout(`target:${gone.id}`);
    expect(holds.map((e) => e.action)).toEqual(["target.hold"]);
    expect(holds[0]).toMatchObject({ actor: "system", via: "system", after: JSON.stringify({ heldBy: "gone" }) });

    const failing = await newTarget({ url: "https://edc.example/failing", breaker: { threshold: 1 } });
    fakeTarget(async () => new Response("down", { status: 503 }));
    await failing.stub.acceptHandoff(failing.id, [makeItem()]);
    await fireAlarm(failing.stub);
    const opened = await entriesAbout(`target:${failing.id}`);
    expect(opened.map((e) => e.action)).toEqual(["target.breaker-open"]);
    expect(opened[0]!.reason).toContain("503");
  });
});
