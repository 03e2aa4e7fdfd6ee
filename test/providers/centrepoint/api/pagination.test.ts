import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ENDPOINT, getWebhookHistoryPage, webhookHistoryPages } from "../../../../src/providers/centrepoint/api/endpoints";
import { deliveryIdOf, type HistoryItem } from "../../../../src/providers/centrepoint/api/schemas";
import { createHarness } from "./setup";

/** Records `count` deliveries in the fake's default webhook; returns their delivery ids. */
function recordDeliveries(h: ReturnType<typeof createHarness>, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const deliveryId = `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
    h.fake.recordDelivery({ deliveryId, event: "upload", body: JSON.stringify({ status: "completed", uploadId: String(i) }) });
    return deliveryId;
  });
}

/** Reads every page, bounded. */
async function collect(h: ReturnType<typeof createHarness>, limit: number): Promise<HistoryItem[]> {
  const items: HistoryItem[] = [];
  for await (const page of webhookHistoryPages(h.api, 189, 74, { limit, maxPages: 100 })) {
    if (!page.ok) throw new Error(page.error.kind);
    items.push(...page.value.items);
  }
  return items;
}

describe("page", () => {
  it("advances by the items returned, not by the limit asked", async () => {
    const h = createHarness({ fake: { maxPageSize: 7 } });
    recordDeliveries(h, 20);
    const r = await getWebhookHistoryPage(h.api, 189, 74, { offset: 0, limit: 50 });
    expect(r.ok && { n: r.value.items.length, next: r.value.nextOffset, done: r.value.done, total: r.value.totalCount }).toEqual({
      n: 7,
      next: 7,
      done: false,
      total: 20,
    });
  });

  it("is done when offset + returned reaches totalCount", async () => {
    const h = createHarness();
    recordDeliveries(h, 5);
    const r = await getWebhookHistoryPage(h.api, 189, 74, { offset: 3, limit: 2 });
    expect(r.ok && [r.value.items.length, r.value.nextOffset, r.value.done]).toEqual([2, 5, true]);
  });

  it("clamps limit to 1..100 in the query", async () => {
    const h = createHarness();
    await getWebhookHistoryPage(h.api, 189, 74, { limit: 500 });
    await getWebhookHistoryPage(h.api, 189, 74, { limit: 0 });
    const limits = h.fake
      .requests()
      .filter((e) => e.path.endsWith("/history"))
      .map((e) => e.query.limit);
    expect(limits).toEqual(["100", "1"]);
  });

  it("treats an empty page before totalCount as done, with a note, instead of looping", async () => {
    const h = createHarness({
      wrapFetch: (next) => async (input, init) =>
        String(input).includes("/history") ? Response.json({ items: [], links: {}, totalCount: 10, limit: 5, offset: 0 }) : next(input, init),
    });
    const pages = [];
    for await (const p of webhookHistoryPages(h.api, 189, 74, { limit: 5, maxPages: 50 })) pages.push(p);
    expect(pages).toHaveLength(1);
    expect(pages[0]!.ok && pages[0]!.value).toMatchObject({ items: [], done: true, nextOffset: 0 });
    expect(pages[0]!.ok && pages[0]!.value.note).toContain("no items at offset 0 of 10");
  });

  it("validates each item and names the failing field", async () => {
    const h = createHarness();
    recordDeliveries(h, 2);
    const r = await h.api.page(ENDPOINT.webhookHistory.replace("{studyId}", "189").replace("{webhookId}", "74"), z.object({ nope: z.string() }), {
      scope: "CentrePoint",
    });
    expect(!r.ok && r.error).toMatchObject({ kind: "invalid_response", reason: "schema mismatch at items.0.nope (invalid_type), items.1.nope (invalid_type)" });
  });
});

describe("pages", () => {
  it("collects every item exactly once when the server returns fewer items than asked, in shuffled order", async () => {
    const h = createHarness({ fake: { maxPageSize: 7, order: "shuffled", seed: 42 } });
    const ids = recordDeliveries(h, 50);
    const items = await collect(h, 20);
    const seen = items.map((i) => (deliveryIdOf(i) as { ok: true; value: string }).value);
    expect(seen).toHaveLength(50);
    expect(new Set(seen)).toEqual(new Set(ids));
    expect(seen).not.toEqual(ids); // really shuffled
    const offsets = h.fake
      .requests()
      .filter((e) => e.path.endsWith("/history"))
      .map((e) => Number(e.query.offset));
    expect(offsets).toEqual([0, 7, 14, 21, 28, 35, 42, 49]);
  });

  it("reads a descending listing completely", async () => {
    const h = createHarness({ fake: { order: "desc", maxPageSize: 3 } });
    const ids = recordDeliveries(h, 10);
    const items = await collect(h, 100);
    expect(items.map((i) => (deliveryIdOf(i) as { ok: true; value: string }).value)).toEqual([...ids].reverse());
  });

  it("stops after maxPages with done false and the offset to resume from", async () => {
    const h = createHarness({ fake: { maxPageSize: 4 } });
    recordDeliveries(h, 30);
    const pages = [];
    for await (const p of webhookHistoryPages(h.api, 189, 74, { limit: 100, maxPages: 2 })) pages.push(p);
    expect(pages).toHaveLength(2);
    const last = pages[1]!;
    expect(last.ok && [last.value.done, last.value.nextOffset]).toEqual([false, 8]);
  });

  it("yields the error last and stops", async () => {
    const h = createHarness({ fake: { maxPageSize: 4 } });
    recordDeliveries(h, 12);
    const pages = [];
    for await (const p of webhookHistoryPages(h.api, 189, 74, { maxPages: 10 })) {
      pages.push(p);
      h.fake.failNext(1, { status: 404, path: "/centrepoint/v3/Studies/189/Webhooks/74/history" });
    }
    expect(pages.map((p) => p.ok)).toEqual([true, false]);
  });
});
