import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type ArchiveRecord, verifyLines } from "../../src/ledger/archive-format";
import { admin, freshId, ledgerOf, postWebhook, putSource } from "../support/helpers";
import { runDue, useSmallSegments } from "../support/ledger";
import { clockForEachTest, DAY, T0 } from "../support/clock";

const clock = clockForEachTest();

const MINUTE = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A source with deliveries e-1..e-n received a minute apart from T0 on. */
async function sourceWithDeliveries(n: number) {
  const source = freshId();
  await putSource(source);
  for (let i = 1; i <= n; i++) {
    expect((await postWebhook(source, { deliveryId: `e-${i}` })).status).toBe(200);
    clock.advance(MINUTE);
  }
  return source;
}

describe("GET /admin/sources/:id/export", () => {
  it("streams the records received in [from, to) as NDJSON, page by page, that verify on their own", async () => {
    const source = await sourceWithDeliveries(8);
    // Pages of two records: the export is pulled from the ledger in four RPC pages.
    await runInDurableObject(
      ledgerOf(source),
      (instance) => void ((instance as unknown as { exportPageLimits: object }).exportPageLimits = { rows: 2, bytes: 1 << 20 }),
    );
    const res = await admin(`/sources/${source}/export?from=${iso(T0 + 2 * MINUTE)}&to=${iso(T0 + 6 * MINUTE + 1)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename=".+\.ndjson"$/);
    const text = await res.text();
    const records = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as ArchiveRecord);
    expect(records.map((r) => r.deliveryId)).toEqual(["e-3", "e-4", "e-5", "e-6", "e-7"]);
    expect(records.every((r) => r.body !== null && r.bodyPrunedAt === null)).toBe(true);
    expect(verifyLines(text, null, "export")).toMatchObject({ ok: true, verified: { records: 5, last: { seq: 7 } } });
    expect(new TextDecoder().decode(Uint8Array.from(atob(records[0]!.body!), (c) => c.charCodeAt(0)))).toContain('"uploadId"');
  });

  it("streams the whole ledger without bounds, and nothing for a range without records", async () => {
    const source = await sourceWithDeliveries(3);
    const all = await (await admin(`/sources/${source}/export`)).text();
    expect(all.trim().split("\n")).toHaveLength(3);
    expect(verifyLines(all, { seq: 0, hash: "0".repeat(64) }, "export")).toMatchObject({ ok: true });
    const none = await admin(`/sources/${source}/export?from=${iso(T0 + 365 * 86_400_000)}`);
    expect(none.status).toBe(200);
    expect(await none.text()).toBe("");
  });

  it("answers 404 for an unknown source and 400 for a time that is not ISO 8601", async () => {
    expect((await admin("/sources/no-such-source/export")).status).toBe(404);
    const source = await sourceWithDeliveries(1);
    const bad = await admin(`/sources/${source}/export?from=yesterday`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: "bad_request", fields: [{ path: "from" }] });
  });

  // Issue 16, item 10: a range that starts before what retention kept started silently later.
  it("says where it starts, and through which record retention removed the rest, when `from` is before the records kept", async () => {
    const source = freshId();
    await putSource(source, { retention: { recordDays: 7 } });
    await useSmallSegments(ledgerOf(source), 3);
    for (let i = 1; i <= 3; i++) {
      expect((await postWebhook(source, { deliveryId: `p-${i}` })).status).toBe(200);
      clock.advance(MINUTE);
    }
    clock.advance(3 * DAY);
    for (let i = 4; i <= 5; i++) {
      expect((await postWebhook(source, { deliveryId: `p-${i}` })).status).toBe(200);
      clock.advance(MINUTE);
    }
    clock.advance(5 * DAY);
    await runDue(ledgerOf(source)); // archives 1-3 (and 4-5), removes 1-3 (older than 7 days)
    expect((await ledgerOf(source).lifecycle()).retention.recordsPrunedThrough).toBe(3);

    const res = await admin(`/sources/${source}/export?from=${iso(T0)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-export-start-seq")).toBe("4");
    expect(res.headers.get("x-export-pruned-through")).toBe("3");
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as ArchiveRecord);
    expect(lines.map((r) => r.seq)).toEqual([4, 5]);

    // A ledger nothing was removed from names its start, and no pruned record.
    const whole = await sourceWithDeliveries(2);
    const all = await admin(`/sources/${whole}/export?from=${iso(T0)}`);
    expect(all.headers.get("x-export-start-seq")).toBe("1");
    expect(all.headers.get("x-export-pruned-through")).toBeNull();
    const none = await admin(`/sources/${whole}/export?from=${iso(T0 + 365 * DAY)}`);
    expect(none.headers.get("x-export-start-seq")).toBeNull();

    const doc = (await (await admin("/openapi.json")).json()) as { paths: Record<string, Record<string, any>> };
    expect(Object.keys(doc.paths["/admin/sources/{id}/export"]!.get.responses["200"].headers)).toEqual(["X-Export-Start-Seq", "X-Export-Pruned-Through"]);
  });
});
