import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type ArchiveRecord, verifyLines } from "../../src/ledger/archive-format";
import { admin, freshId, ledgerOf, postWebhook, putSource } from "../helpers";
import { clockForEachTest, T0 } from "../outbox/fixtures";

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
});
