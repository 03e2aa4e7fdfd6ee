import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ReconcileReport } from "../../src/reconcile/store";
import { admin, freshId, ledgerOf, postWebhook, putTarget } from "../support/helpers";
import { runDue, useSmallSegments } from "../support/ledger";
import { DAY } from "../support/clock";
import { outboxOf } from "../support/outbox";
import { historyDelivery, newReconciledSource, uploadBodyFor, useFakeCentrePoint, useTestHooks } from "../support/reconcile";

/**
 * Issue 16, item 1: retention removes records after `recordDays` (at least 7), while reconciliation
 * looks back up to 90 days. A delivery id the ledger once recorded must never be backfilled (and so
 * sent to the targets, and its raw data requested) again while any look-back can reach it.
 */

const { advance } = useTestHooks(["log", "warn"]);

async function reconcile(source: string): Promise<ReconcileReport & Record<string, unknown>> {
  const res = await admin(`/sources/${source}/reconcile`, { method: "POST" });
  expect(res.status).toBe(200);
  return (await res.json()) as ReconcileReport & Record<string, unknown>;
}

async function deliver(source: string, target: string): Promise<void> {
  await runDurableObjectAlarm(ledgerOf(source));
  await runDurableObjectAlarm(outboxOf(target));
}

describe("a delivery retention removed from the ledger", () => {
  it("is not backfilled by a reconciliation whose look-back reaches it: nothing recorded, nothing sent, counted as known and pruned", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newReconciledSource({ retention: { recordDays: 7 } }, { reconcile: { lookbackHours: 720 }, autoRequest: { fileFormat: "csv" } });
    const target = freshId("t");
    await putTarget(target, { url: "https://edc.example/hooks", sources: [source] });
    const ledger = ledgerOf(source);
    await useSmallSegments(ledger, 1);
    const id = historyDelivery(fake, 1);
    expect((await postWebhook(source, { deliveryId: id, body: uploadBodyFor(1) })).status).toBe(200);
    await deliver(source, target);
    expect(sent.map((s) => s.headers["webhook-id"])).toEqual([id]);

    // Eight days on: archived, then removed by retention (recordDays 7).
    advance(8 * DAY);
    await runDue(ledger);
    expect(await ledger.get(id)).toBeNull();
    expect((await ledger.lifecycle()).retention.prunedRecords).toBe(1);

    // The 30-day look-back still reaches the history item.
    const report = await reconcile(source);
    expect(report).toMatchObject({ complete: true, outcome: "ok", backfilled: 0, knownPruned: 1, matched: 0, errors: 0 });
    expect(report.backfilledIds).toEqual([]);
    expect(await ledger.list({ limit: 10 })).toEqual([]);
    expect((await ledger.stats()).pendingHandoffs).toBe(0); // no hand-off, no Puller job: no raw-data request either
    await deliver(source, target);
    expect(sent.map((s) => s.headers["webhook-id"])).toEqual([id]);

    // A second run, and CentrePoint's own resend of the id, change nothing either.
    expect(await reconcile(source)).toMatchObject({ backfilled: 0, knownPruned: 1 });
    const resent = await postWebhook(source, { deliveryId: id, body: uploadBodyFor(1) });
    expect(await resent.json()).toMatchObject({ status: "duplicate", deliveryId: id });
    expect(await ledger.list({ limit: 10 })).toEqual([]);
    await deliver(source, target);
    expect(sent).toHaveLength(1);
  });
});
