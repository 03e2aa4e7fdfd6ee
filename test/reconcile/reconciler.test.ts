import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { Ledger } from "../../src/ledger/ledger";
import type { ReconcileReport } from "../../src/reconcile/store";
import { admin, ledgerOf, postWebhook } from "../support/helpers";
import { verifyFully } from "../support/ledger";
import { outboxOf } from "../support/outbox";
import { historyDelivery, newReconciledSource, newSourceWithTarget, reconcilerOf, uploadBodyFor, useFakeCentrePoint, useTestHooks } from "../support/reconcile";

/**
 * Reconciliation end to end (src/reconcile/): the admin API starts a run, the Reconciler reads the
 * fake CentrePoint's delivery history, the ledger gets the missing deliveries, the targets get them
 * once. Deterministic: Date is fixed (year 2100) and every alarm is fired by the test.
 */

useTestHooks(["log", "warn"]);

/** POST /admin/sources/:id/reconcile: the status and the report (times as ISO strings, hence the looser type). */
async function reconcile(source: string): Promise<{ status: number; body: ReconcileReport & Record<string, unknown> }> {
  const res = await admin(`/sources/${source}/reconcile`, { method: "POST" });
  return { status: res.status, body: (await res.json()) as ReconcileReport & Record<string, unknown> };
}

/** Hands the ledger's pending deliveries to the outboxes, then lets each target's outbox send. */
async function deliver(source: string, targets: string[]): Promise<void> {
  await runDurableObjectAlarm(ledgerOf(source));
  for (const t of targets) await runDurableObjectAlarm(outboxOf(t));
}

/** Replaces the Reconciler's wait (Retry-After, backoff) with a recorder, so nothing sleeps. */
async function recordSleeps(source: string): Promise<number[]> {
  const slept: number[] = [];
  await runInDurableObject(reconcilerOf(source), (instance) => {
    (instance as unknown as { sleep: (ms: number) => Promise<void> }).sleep = async (ms) => void slept.push(ms);
  });
  return slept;
}

/** Pushes a delivery to ingress as CentrePoint would, with the body the fake records for `n`. */
async function push(source: string, deliveryId: string, n: number): Promise<void> {
  const res = await postWebhook(source, { deliveryId, body: uploadBodyFor(n) });
  expect(res.status).toBe(200);
}

/** Every delivery id in a source's ledger. */
async function ledgerIds(source: string): Promise<string[]> {
  return (await ledgerOf(source).list({ limit: 500 })).map((d) => d.deliveryId).sort();
}

describe("a run", () => {
  it("counts a history of matched, missing, failed-but-recorded, validation, ping, old and unreadable rows exactly", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    const a = historyDelivery(fake, 1); // pushed, CentrePoint saw 200
    const b = historyDelivery(fake, 2, { responseCode: 401 }); // refused (wrong secret), twice: missing
    historyDelivery(fake, 2, { responseCode: 401 });
    const c = historyDelivery(fake, 3, { errorMessage: "An error occurred while attempting to send a webhook message: The operation timed out" });
    historyDelivery(fake, 3, { responseCode: 500 }); // pushed, but CentrePoint logged only failures
    fake.recordDelivery({ event: "validation", body: '{"WebhookId":74,"ValidationCode":"1d3ad7a1-91c9-4ffc-8562-5bad545e6a40"}' });
    fake.recordDelivery({ event: "upload", body: '{"random_guid":"f38146bd","webhook_id":"74","test":"ping"}' });
    const f = historyDelivery(fake, 6); // CentrePoint saw 200 (a former URL) but the ledger never had it: missing
    const g = historyDelivery(fake, 7, { responseCode: 503 }); // pushed: a failure, then a success
    historyDelivery(fake, 7);
    historyDelivery(fake, 8, { createdAt: Date.now() - 200 * 3_600_000 }); // older than the 168 h look-back
    historyDelivery(fake, 9);
    const unreadable = fake.history().at(-1)!;
    unreadable.request.headers = "{not json";
    for (const [id, n] of [
      [a, 1],
      [c, 3],
      [g, 7],
    ] as const)
      await push(source, id, n);

    const { status, body } = await reconcile(source);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      complete: true,
      outcome: "errors",
      pages: 1,
      scanned: 12,
      outsideLookback: 1,
      matched: 2,
      backfilled: 2,
      recordedButFailedAtCentrePoint: 1,
      skipped: 2,
      errors: 1,
      firstError: `history item ${unreadable.id}: request.headers are not valid JSON`,
    });
    expect(body.backfilledIds.sort()).toEqual([b, f].sort());
    expect(await ledgerIds(source)).toEqual([a, b, c, f, g].sort());
  });

  it("backfills nothing on a second run over the same history, and the targets get each backfill once", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const { source, target } = await newSourceWithTarget();
    const pushed = historyDelivery(fake, 1);
    await push(source, pushed, 1);
    const missing = [2, 3, 4].map((n) => historyDelivery(fake, n, { responseCode: 401 }));

    expect((await reconcile(source)).body).toMatchObject({ backfilled: 3, matched: 1 });
    await deliver(source, [target]);
    const second = await reconcile(source);
    expect(second.body).toMatchObject({ complete: true, outcome: "ok", backfilled: 0, matched: 4, recordedButFailedAtCentrePoint: 0 });
    await deliver(source, [target]);

    const ids = sent.map((s) => s.headers["webhook-id"]).sort();
    expect(ids).toEqual([pushed, ...missing].sort());
    expect((await ledgerOf(source).stats()).duplicates).toBe(0);
  });

  it("answers a push that arrives after its backfill as a duplicate, and sends it nowhere again", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const { source, target } = await newSourceWithTarget();
    const id = historyDelivery(fake, 1, { errorMessage: "An error occurred while attempting to send a webhook message: Failed to resolve domain" });
    expect((await reconcile(source)).body.backfilled).toBe(1);
    await deliver(source, [target]);

    const res = await postWebhook(source, { deliveryId: id, body: uploadBodyFor(1) }); // CentrePoint's 24 h retry
    expect(await res.json()).toMatchObject({ status: "duplicate", deliveryId: id });
    await deliver(source, [target]);
    expect(sent.map((s) => s.headers["webhook-id"])).toEqual([id]);
    expect((await ledgerOf(source).get(id))?.provenance).toBe("centrepoint-history");
  });

  it("matches a pushed delivery without X-ActiGraph-Delivery by the id ingress derived", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    expect((await postWebhook(source, { deliveryId: null, body: uploadBodyFor(5) })).status).toBe(200);
    fake.recordDelivery({ event: "upload", body: uploadBodyFor(5), headers: { "X-ActiGraph-Delivery": "" } });
    expect((await reconcile(source)).body).toMatchObject({ matched: 1, backfilled: 0 });
    expect((await ledgerOf(source).list({ limit: 5 })).map((d) => d.idDerived)).toEqual([true]);
  });
});

describe("provenance", () => {
  it("is in the hash chain, the admin API, the deliveries filter and the envelope the target receives", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const { source, target } = await newSourceWithTarget();
    const pushed = historyDelivery(fake, 1);
    await push(source, pushed, 1);
    const backfilled = historyDelivery(fake, 2, { responseCode: 401, headers: { "X-ActiGraph-Signature": "d3JvbmcgYnV0IHNpZ25lZA==" } });
    await reconcile(source);
    await deliver(source, [target]);

    const detail = (await (await admin(`/deliveries/${source}/${backfilled}`)).json()) as Record<string, any>;
    expect(detail).toMatchObject({ provenance: "centrepoint-history", sourceIp: null, event: "upload", kind: "upload.completed" });
    expect(detail.envelope).toMatchObject({ id: backfilled, provenance: "centrepoint-history", centrepointevent: "upload" });
    expect(detail.body.text).toBe(uploadBodyFor(2));
    expect(detail.headers["x-actigraph-signature"]).toBe("[redacted]");
    expect(detail.headers["x-actigraph-delivery"]).toBe(backfilled);
    const pushedDetail = (await (await admin(`/deliveries/${source}/${pushed}`)).json()) as Record<string, any>;
    expect(pushedDetail.provenance).toBe("webhook");
    expect(pushedDetail.envelope.provenance).toBeUndefined();

    const listed = (await (await admin(`/deliveries?source=${source}&provenance=centrepoint-history`)).json()) as { items: { deliveryId: string }[] };
    expect(listed.items.map((d) => d.deliveryId)).toEqual([backfilled]);

    const received = sent.find((s) => s.headers["webhook-id"] === backfilled)!;
    expect(JSON.parse(received.body)).toMatchObject({ id: backfilled, provenance: "centrepoint-history", data: { uploadId: "90002" } });

    const ledger = ledgerOf(source);
    expect(await verifyFully(ledger)).toMatchObject({ ok: true, checked: 2 });
    await runInDurableObject(
      ledger,
      (_i, state) => void state.storage.sql.exec("UPDATE deliveries SET provenance = 'webhook' WHERE delivery_id = ?", backfilled),
    );
    expect((await verifyFully(ledger)).firstBroken).toMatchObject({ deliveryId: backfilled, reason: "record_hash does not match the record's contents" });
  });
});

describe("a long history", () => {
  it("is cut into invocations; the run continues from its alarm where it stopped, after an eviction too", async () => {
    const { fake } = useFakeCentrePoint({ maxPageSize: 2, order: "shuffled", seed: 7 });
    const source = await newReconciledSource();
    const ids = Array.from({ length: 25 }, (_, n) => historyDelivery(fake, n, { responseCode: 401 }));

    const first = await reconcile(source);
    expect(first.body).toMatchObject({ complete: false, outcome: "running", pages: 10, scanned: 20, backfilled: 20 });
    const reconciler = reconcilerOf(source);
    expect(await runInDurableObject(reconciler, (_i, state) => state.storage.getAlarm())).toBe(Date.now() + 15_000);

    await evictDurableObject(reconciler);
    expect(await runDurableObjectAlarm(reconciler)).toBe(true);
    const [report] = await reconciler.reports(5);
    expect(report).toMatchObject({ complete: true, outcome: "ok", pages: 13, scanned: 25, backfilled: 25, matched: 0 });
    expect(await ledgerIds(source)).toEqual([...ids].sort());
    const offsets = fake
      .requests()
      .filter((r) => r.path.endsWith("/history"))
      .map((r) => Number(r.query.offset));
    expect(offsets).toEqual(Array.from({ length: 13 }, (_, i) => i * 2));
    expect(await runInDurableObject(reconciler, (_i, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM run_items").one().n)).toBe(0);
  });

  it("counts every row once and classifies by all of a delivery's rows, whatever the order of the pages", async () => {
    for (const order of ["asc", "desc", "shuffled"] as const) {
      const { fake } = useFakeCentrePoint({ maxPageSize: 3, order, seed: 3 });
      const source = await newReconciledSource();
      // A pushed delivery whose failures and success land on different pages; another with failures only.
      const late = historyDelivery(fake, 1, { responseCode: 500 });
      for (let n = 10; n < 16; n++) historyDelivery(fake, n, { responseCode: 401 });
      historyDelivery(fake, 1, { errorMessage: "timeout" });
      const lost = historyDelivery(fake, 2, { errorMessage: "timeout" });
      for (let n = 20; n < 24; n++) historyDelivery(fake, n);
      historyDelivery(fake, 1);
      await push(source, late, 1);
      await push(source, lost, 2);
      const { body } = await reconcile(source);
      expect(body, order).toMatchObject({ complete: true, scanned: 14, matched: 1, recordedButFailedAtCentrePoint: 1, backfilled: 10, errors: 0 });
    }
  });
});

describe("the API client inside a run", () => {
  it("caches its token across runs and refreshes it once after a 401", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    historyDelivery(fake, 1);
    await reconcile(source);
    await reconcile(source);
    expect(fake.tokenRequests()).toBe(1);
    fake.expireTokens(); // the cached token is refused: 401
    expect((await reconcile(source)).body).toMatchObject({ complete: true, outcome: "ok", matched: 1 });
    expect(fake.tokenRequests()).toBe(2);
    expect(fake.requests().filter((r) => r.status === 401)).toHaveLength(1);
  });

  it("honours a short Retry-After by waiting inside the call", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    historyDelivery(fake, 1);
    const slept = await recordSleeps(source);
    fake.failNext(1, { status: 429, retryAfter: "3", path: "/centrepoint/v3/Studies/189/Webhooks/74/history" });
    expect((await reconcile(source)).body).toMatchObject({ complete: true, outcome: "ok", backfilled: 1 });
    expect(slept).toEqual([3_000]);
  });

  it("pauses the run until a long Retry-After has passed, then continues from its alarm", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    historyDelivery(fake, 1);
    await recordSleeps(source);
    fake.failNext(1, {
      status: 429,
      retryAfter: "120",
      contentType: "text/plain",
      body: "Rate limit is exceeded. Try again in 120 seconds.",
      path: "/centrepoint/v3/Studies/189/Webhooks/74/history",
    });
    expect((await reconcile(source)).body).toMatchObject({ complete: false, pages: 0 });
    const reconciler = reconcilerOf(source);
    expect(await runInDurableObject(reconciler, (_i, state) => state.storage.getAlarm())).toBe(Date.now() + 120_000);
    const historyCalls = () => fake.requests().filter((r) => r.path.endsWith("/history")).length;
    expect(historyCalls()).toBe(1);
    await runDurableObjectAlarm(reconciler);
    expect((await reconciler.reports(1))[0]).toMatchObject({ complete: true, outcome: "ok", backfilled: 1 });
    expect(historyCalls()).toBe(2);
  });
});

describe("failures", () => {
  it("answers 502 with CentrePoint's status for an unknown webhook, and keeps the failed report", async () => {
    useFakeCentrePoint();
    const source = await newReconciledSource({}, { webhookId: 999 });
    const res = await admin(`/sources/${source}/reconcile`, { method: "POST" });
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({
      error: "upstream_error",
      message:
        "The reconciliation failed: CentrePoint answered HTTP 404 to /centrepoint/v3/Studies/{studyId}/Webhooks/{webhookId}/history: Webhook 999 not found in study 189.",
      upstream: { status: 404, endpoint: "/centrepoint/v3/Studies/{studyId}/Webhooks/{webhookId}/history" },
    });
    const reports = (await (await admin(`/sources/${source}/reconcile`)).json()) as { items: ReconcileReport[] };
    expect(reports.items).toMatchObject([{ complete: true, outcome: "failed", failure: "upstream", errors: 1 }]);
    const registration = await admin(`/sources/${source}/registration`);
    expect(registration.status).toBe(502);
    expect(await registration.json()).toMatchObject({
      error: "upstream_error",
      upstream: { status: 404, endpoint: "/centrepoint/v3/Studies/{studyId}/Webhooks/{webhookId}" },
    });
  });

  it("records a backfill the ledger refused as an error of the run, and the next run tries it again", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    const id = historyDelivery(fake, 1, { responseCode: 401 });
    vi.spyOn(Ledger.prototype, "record").mockRejectedValueOnce(new Error("storage unavailable"));
    const first = await reconcile(source);
    expect(first.body).toMatchObject({ complete: true, outcome: "errors", backfilled: 0, errors: 1 });
    expect(first.body.firstError).toContain(`delivery ${id}: the ledger did not take the backfill (storage unavailable)`);
    expect((await reconcile(source)).body).toMatchObject({ outcome: "ok", backfilled: 1, errors: 0 });
  });
});
