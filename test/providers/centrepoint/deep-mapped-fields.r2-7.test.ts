import { describe, expect, it, vi } from "vitest";
import type { ReconcileReport } from "../../../src/reconcile/store";
import { admin, ledgerOf, postWebhook } from "../../support/helpers";
import { historyDelivery, newReconciledSource, useFakeCentrePoint, useTestHooks } from "../../support/reconcile";

/**
 * Issue 16, item 7: a mapped field nested deep enough that JSON.stringify overflows its stack
 * (objects with an index-like key, about 2,430 levels in workerd) made normalization throw: ingress
 * answered 500, and a reconciliation whose history held such a delivery failed on every run.
 */

useTestHooks(["log", "warn"]);

/** An upload body whose uploadId is an object nested `depth` levels deep under the key "0". */
const deepUpload = (depth: number) => `{"status":"completed","studyId":"2","subjectId":"3","uploadId":${'{"0":'.repeat(depth)}1${"}".repeat(depth)}}`;

async function reconcile(source: string): Promise<ReconcileReport & Record<string, unknown>> {
  const res = await admin(`/sources/${source}/reconcile`, { method: "POST" });
  return (await res.json()) as ReconcileReport & Record<string, unknown>;
}

describe("a mapped field nested 5,000 levels deep", () => {
  it("is recorded at ingress and flagged, not refused with 500", async () => {
    useFakeCentrePoint();
    const source = await newReconciledSource();
    const id = crypto.randomUUID();
    const res = await postWebhook(source, { deliveryId: id, body: deepUpload(5000) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "accepted", deliveryId: id });
    const record = await ledgerOf(source).get(id);
    expect(record?.kind).toBe("upload.completed");
    expect(record?.attention).toContain('uploadId is not a usable id: {"0":{"0":');
  });

  it("is backfilled by a reconciliation, flagged, and the run goes on with the rest of the history", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    const deep = historyDelivery(fake, 1, { body: deepUpload(5000), responseCode: 500 });
    const plain = historyDelivery(fake, 2, { responseCode: 500 });
    const report = await reconcile(source);
    expect(report).toMatchObject({ complete: true, outcome: "ok", backfilled: 2, errors: 0 });
    expect((await ledgerOf(source).get(deep))?.attention).toContain("uploadId is not a usable id");
    expect(await ledgerOf(source).get(plain)).not.toBeNull();
  });
});

describe("a history item whose record cannot be built", () => {
  it("is an error of that item: the run reads on, backfills the others, and the next run tries it again", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    const bad = historyDelivery(fake, 1, { responseCode: 500 });
    const good = historyDelivery(fake, 2, { responseCode: 500 });
    // Any unexpected throw while the record is built: here the stored headers of `bad` cannot be serialized.
    const stringify = JSON.stringify;
    const spy = vi.spyOn(JSON, "stringify").mockImplementation(function (this: unknown, ...args: Parameters<typeof JSON.stringify>) {
      const value = args[0] as Record<string, unknown> | null;
      if (typeof value === "object" && value !== null && value["x-actigraph-delivery"] === bad) throw new RangeError("Maximum call stack size exceeded");
      return stringify.apply(this, args);
    });
    const first = await reconcile(source);
    spy.mockRestore();
    expect(first).toMatchObject({ complete: true, outcome: "errors", backfilled: 1, errors: 1 });
    expect(first.firstError).toContain(`delivery ${bad}: its record could not be built (Maximum call stack size exceeded)`);
    expect(await ledgerOf(source).get(good)).not.toBeNull();
    expect(await ledgerOf(source).get(bad)).toBeNull();
    expect(await reconcile(source)).toMatchObject({ outcome: "ok", backfilled: 1, matched: 1, errors: 0 });
  });
});
