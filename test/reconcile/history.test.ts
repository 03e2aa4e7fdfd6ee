import { describe, expect, it } from "vitest";
import { createFakeCentrePoint, type FakeDeliveryRecord } from "../../harness/fake-centrepoint";
import { countItems, readHistoryRow } from "../../src/reconcile/history";
import { deliveryIdOf } from "../../src/ledger/delivery-record";

/** The pure core of reconciliation (src/reconcile/history.ts): one history row as the relay reads it, and the counting of a run. */

const T = Date.UTC(2030, 5, 1, 12, 0, 0);
const LIMIT = 262_144;

/** One history item exactly as CentrePoint's V3 API serializes it (the fake's wire shape), created at T. */
function item(record: Partial<FakeDeliveryRecord> = {}): unknown {
  const fake = createFakeCentrePoint({ now: () => T });
  return JSON.parse(JSON.stringify(fake.recordDelivery({ event: "upload", body: '{"status":"completed","uploadId":"1"}', ...record })));
}

describe("readHistoryRow", () => {
  it("reads a delivery: its id, the headers as ingress sees them, the body byte-exact, and whether this send succeeded", () => {
    const body = '{"status":"completed","uploadId":"85045","studyId":"189","subjectId":"2358"}';
    const row = readHistoryRow(item({ deliveryId: "d-1", body, headers: { "x-ACTIGRAPH-signature": "c2ln" } }), T - 1, LIMIT);
    expect(row.kind).toBe("delivery");
    if (row.kind !== "delivery") return;
    expect(row).toMatchObject({ deliveryId: "d-1", delivered: true });
    expect(new TextDecoder().decode(row.arrival.body)).toBe(body);
    expect(row.arrival.headers.get("X-ActiGraph-Event")).toBe("upload");
    expect(row.arrival.headers.get("x-actigraph-signature")).toBe("c2ln");
    expect(row.arrival.createdAt).toBe(T);
  });

  it("gives a row without X-ActiGraph-Delivery the id ingress derives for the same request", () => {
    const body = '{"status":"started","uploadId":"7"}';
    const row = readHistoryRow(item({ body, headers: { "X-ActiGraph-Delivery": "" } }), 0, LIMIT);
    const ingress = deliveryIdOf(new Headers({ "x-actigraph-event": "upload" }), new TextEncoder().encode(body));
    expect(ingress.idDerived).toBe(true);
    expect(row).toMatchObject({ kind: "delivery", deliveryId: ingress.deliveryId });
  });

  it("reads createdDate, which has no offset, as UTC", () => {
    const raw = item();
    expect((raw as { createdDate: string }).createdDate).toBe("2030-06-01T12:00:00");
    expect(readHistoryRow(raw, T, LIMIT).kind).toBe("delivery");
    expect(readHistoryRow(raw, T + 1, LIMIT).kind).toBe("outside");
  });

  it("marks a failed send (errorMessage, or a non-2xx answer) as not delivered", () => {
    expect(
      readHistoryRow(item({ errorMessage: "An error occurred while attempting to send a webhook message: Failed to resolve domain" }), 0, LIMIT),
    ).toMatchObject({
      delivered: false,
    });
    expect(readHistoryRow(item({ responseCode: 401 }), 0, LIMIT)).toMatchObject({ delivered: false });
    expect(readHistoryRow(item({ responseCode: 204 }), 0, LIMIT)).toMatchObject({ delivered: true });
  });

  it("skips validation handshakes, by event or by the documented handshake body, and the 2015 ping", () => {
    const validation = item({ event: "validation", body: '{"WebhookId":74,"ValidationCode":"1d3ad7a1-91c9-4ffc-8562-5bad545e6a40"}' });
    const bareHandshake = item({ body: '{"WebhookId":74,"ValidationCode":"abc"}', headers: { "X-ActiGraph-Event": "" } });
    const ping = item({ body: '{"random_guid":"f38146bd","webhook_id":"23","test":"ping"}' });
    for (const raw of [validation, bareHandshake, ping]) expect(readHistoryRow(raw, 0, LIMIT).kind).toBe("skip");
  });

  it("names the item of an unreadable row instead of failing its page", () => {
    const broken = item() as { id: number; request: { headers: string } };
    broken.request.headers = "{not json";
    expect(readHistoryRow(broken, 0, LIMIT)).toEqual({ kind: "unreadable", error: `history item ${broken.id}: request.headers are not valid JSON` });
    expect(readHistoryRow({ id: 9, createdDate: "yesterday" }, 0, LIMIT)).toMatchObject({
      kind: "unreadable",
      error: expect.stringMatching(/^history item 9: schema mismatch/),
    });
  });

  it("refuses a body over the ingress limit, as ingress would have (413)", () => {
    expect(readHistoryRow(item({ deliveryId: "big", body: `{"x":"${"a".repeat(100)}"}` }), 0, 50)).toMatchObject({
      kind: "unreadable",
      error: expect.stringContaining("delivery big): body of 108 bytes is over the 50-byte limit"),
    });
  });
});

describe("countItems", () => {
  it("puts each distinct delivery id in exactly one class", () => {
    expect(
      countItems([
        { state: "backfilled", provenance: "centrepoint-history", delivered: false, count: 3 },
        { state: "known", provenance: "webhook", delivered: true, count: 5 },
        { state: "known", provenance: "webhook", delivered: false, count: 2 },
        { state: "known", provenance: "centrepoint-history", delivered: false, count: 4 },
        { state: "skipped", provenance: null, delivered: false, count: 1 },
        { state: "pruned", provenance: null, delivered: false, count: 6 },
        { state: "error", provenance: null, delivered: false, count: 1 },
        { state: "backfilling", provenance: null, delivered: true, count: 1 },
      ]),
    ).toEqual({ backfilled: 3, matched: 9, knownPruned: 6, recordedButFailedAtCentrePoint: 2, skipped: 1, failed: 2 });
  });
});
