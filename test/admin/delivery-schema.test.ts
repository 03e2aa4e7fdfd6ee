import { describe, expect, it } from "vitest";
import { z } from "zod";
import { DELIVERY_TIMES, deliverySchema } from "../../src/admin/routes/deliveries.schemas";
import { deliveryRecordSchema } from "../../src/ledger/types";
import { admin, freshId, ledgerOf, postWebhook, putSource } from "../support/helpers";

describe("the API's delivery is the ledger's record", () => {
  it("has every field of the record, plus its source, each the record's own schema but the times", () => {
    const record = deliveryRecordSchema.shape as Record<string, z.ZodType>;
    const api = deliverySchema.shape as Record<string, z.ZodType>;
    expect(Object.keys(api).sort()).toEqual([...Object.keys(record), "source"].sort());
    const times: readonly string[] = DELIVERY_TIMES;
    // Derived, not re-declared: the API shares the record's field schemas (a change there is a change here).
    for (const key of Object.keys(record).filter((k) => !times.includes(k))) expect(api[key], key).toBe(record[key]);
    // The record keeps epoch ms; the API answers ISO 8601.
    for (const key of times) {
      expect(z.toJSONSchema(record[key]!), key).not.toMatchObject({ type: "string" });
      expect(JSON.stringify(z.toJSONSchema(api[key]!)), key).toContain('"format":"date-time"');
    }
  });

  it("is what the ledger returns and the API answers, field for field", async () => {
    const id = freshId();
    await putSource(id);
    expect((await postWebhook(id, { deliveryId: "drift-1" })).status).toBe(200);
    const [stored] = await ledgerOf(id).list({ limit: 1 });
    expect(deliveryRecordSchema.strict().safeParse(stored).error?.issues ?? []).toEqual([]);
    const listed = (await (await admin(`/deliveries?source=${id}`)).json()) as { items: unknown[] };
    expect(listed.items).toHaveLength(1);
    expect(deliverySchema.strict().safeParse(listed.items[0]).error?.issues ?? []).toEqual([]);
    expect(listed.items[0]).toMatchObject({ source: id, deliveryId: "drift-1", receivedAt: new Date(stored!.receivedAt).toISOString() });
  });
});
