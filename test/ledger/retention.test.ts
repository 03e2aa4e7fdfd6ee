import { env, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { segmentKeys, verifyLines } from "../../src/ledger/archive-format";
import { GENESIS } from "../../src/ledger/chain";
import { reconcileScheduleSchema } from "../../src/config/schemas";
import { PRUNED_ID_KEEP_MS } from "../../src/ledger/retention";
import { sha256Hex } from "../../src/lib/crypto";
import type { HandoffItem } from "../../src/outbox/types";
import { admin, ADMIN_TOKEN, freshId, ledgerOf, putSource } from "../support/helpers";
import { clockForEachTest, DAY, HOUR, T0 } from "../support/clock";
import { insertVersion1Records, recordInput, runDue, useSmallSegments, verifyFully } from "../support/ledger";

const clock = clockForEachTest();

/** A source whose ledger has 3-record segments and records d-1..d-n, a second apart from T0. */
async function sourceWithRecords(n: number, retention: Record<string, number>) {
  const source = freshId("ret");
  await putSource(source, { retention });
  const ledger = ledgerOf(source);
  await useSmallSegments(ledger);
  for (let i = 1; i <= n; i++) {
    await ledger.record(recordInput({ source, deliveryId: `d-${i}`, receivedAt: Date.now(), body: new TextEncoder().encode(`{"n":${i}}`) }));
    clock.advance(1_000);
  }
  return { source, ledger };
}

describe("retention of a ledger", () => {
  it("prunes bodies and then records only once archived and older than the limit, and the chain still verifies", async () => {
    const { source, ledger } = await sourceWithRecords(5, { bodyDays: 1, recordDays: 7 });
    // Records 4 and 5 cannot be archived (another object is under their segment's key): old enough, they must stay whole.
    await env.ARCHIVE.put(segmentKeys(source, 4, 5).segment, "someone else's\n");
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.setSystemTime(T0 + HOUR);
    await runDue(ledger); // archives 1-3
    vi.setSystemTime(T0 + DAY + HOUR);
    await runDue(ledger); // archive halts at 4-5; bodies of 1-3 pruned
    const [d5, d4, d3] = await ledger.list({ limit: 10 });
    expect([d5!.bodyPrunedAt, d4!.bodyPrunedAt]).toEqual([null, null]);
    expect(d3).toMatchObject({ bodyPrunedAt: T0 + DAY + HOUR, bodySize: 7 });
    const detail = await ledger.get("d-1");
    expect(detail).toMatchObject({ envelope: "", bodyPrunedAt: T0 + DAY + HOUR, bodySha256: sha256Hex('{"n":1}') });
    expect(detail!.body.byteLength).toBe(0);
    expect(await verifyFully(ledger)).toMatchObject({ ok: true, checked: 5, prunedBodies: 3 });
    // The export says which bodies went, and still verifies.
    let exported = "";
    for (let next: number | null = 1; next !== null;) {
      const page = await ledger.exportPage(next, 5);
      exported += page.text;
      next = page.next;
    }
    expect(
      exported
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { body: string | null }).body === null),
    ).toEqual([true, true, true, false, false]);
    expect(verifyLines(exported, { seq: 0, hash: GENESIS }, "export")).toMatchObject({ ok: true, verified: { records: 5, prunedBodies: 3 } });

    // The pull side's rows of a record (its enrichment, downloads through its links) go with it.
    const pullRows = (sql: string) =>
      runInDurableObject(ledger, (_i, state) =>
        state.storage.sql
          .exec<{ id: string }>(sql)
          .toArray()
          .map((r) => r.id)
          .sort(),
      );
    await runInDurableObject(ledger, (_i, state) => {
      for (const id of ["d-2", "d-5"]) {
        state.storage.sql.exec("INSERT INTO enrichments (delivery_id, result, settled, updated_at) VALUES (?, '{}', 1, 0)", id);
        state.storage.sql.exec("INSERT INTO downloads (at, target_id, file_id, delivery_id, outcome) VALUES (0, 't', ?, ?, 'redirected')", `f-${id}`, id);
      }
    });

    vi.setSystemTime(T0 + 7 * DAY + HOUR);
    await runDue(ledger); // records 1-3 go; 4-5 stay
    expect(await pullRows("SELECT delivery_id AS id FROM enrichments")).toEqual(["d-5"]);
    expect(await pullRows("SELECT delivery_id AS id FROM downloads")).toEqual(["d-5"]);
    expect((await ledger.list({ limit: 10 })).map((d) => d.deliveryId)).toEqual(["d-5", "d-4"]);
    expect(await ledger.get("d-2")).toBeNull();
    expect(await ledger.stats()).toMatchObject({ deliveries: 5 }); // counted since the ledger began
    expect(await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM search_keys WHERE seq <= 3").one().n)).toBe(0);
    expect(await verifyFully(ledger)).toMatchObject({ ok: true, mode: "full", fromSeq: 4, checked: 2 });
    // Tampering with what is kept is still found, from the anchor on.
    await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("UPDATE deliveries SET prev_hash = ? WHERE seq = 4", GENESIS));
    expect(await verifyFully(ledger)).toMatchObject({ ok: false, firstBroken: { seq: 4, reason: "prev_hash does not match the previous record" } });
  });

  it("keeps everything without a retention, and never prunes before the limit", async () => {
    const { ledger } = await sourceWithRecords(3, {});
    vi.setSystemTime(T0 + 400 * DAY);
    await runDue(ledger);
    expect((await ledger.list({ limit: 10 })).every((d) => d.bodyPrunedAt === null)).toBe(true);
    const young = await sourceWithRecords(3, { bodyDays: 30 });
    vi.setSystemTime(Date.now() + 29 * DAY);
    await runDue(young.ledger);
    expect((await young.ledger.list({ limit: 10 })).every((d) => d.bodyPrunedAt === null)).toBe(true);
    expect(
      (
        await runInDurableObject(young.ledger, (_i, state) => state.storage.sql.exec("SELECT state FROM jobs WHERE kind = 'archive'").one().state as string)
      ).includes('"seq":3'),
    ).toBe(true);
  });

  it("stores a version 1 record's envelope digest before its envelope goes, so its link still verifies", async () => {
    const source = freshId("ret");
    await putSource(source, { retention: { bodyDays: 1 } });
    const ledger = ledgerOf(source);
    await runInDurableObject(ledger, (_i, state) => {
      insertVersion1Records(state.storage.sql, [{ deliveryId: "old-1", body: '{"v":1}', envelope: '{"id":"old-1"}' }]);
      state.storage.sql.exec("INSERT INTO meta (key, value) VALUES ('source', ?)", source);
    });
    await ledger.record(recordInput({ source, deliveryId: "new-2" }));
    vi.setSystemTime(T0 + 2 * DAY);
    await runDue(ledger);
    const row = await runInDurableObject(ledger, (_i, state) =>
      state.storage.sql.exec("SELECT envelope, envelope_sha256, body_pruned_at FROM deliveries WHERE seq = 1").one(),
    );
    expect(row).toEqual({ envelope: "", envelope_sha256: sha256Hex('{"id":"old-1"}'), body_pruned_at: T0 + 2 * DAY });
    expect(await verifyFully(ledger)).toMatchObject({ ok: true, checked: 2, prunedBodies: 2 });
  });

  it("stops pruning at a body that no longer matches its digest, and keeps it", async () => {
    const { ledger } = await sourceWithRecords(3, { bodyDays: 1 });
    vi.setSystemTime(T0 + HOUR);
    await runDue(ledger); // archived
    await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("UPDATE deliveries SET body = ? WHERE seq = 2", new TextEncoder().encode("{}")));
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.setSystemTime(T0 + 2 * DAY);
    await runDue(ledger);
    expect((await ledger.list({ limit: 10 })).map((d) => d.bodyPrunedAt !== null)).toEqual([false, false, true]);
    expect(errors).toHaveBeenCalledWith(expect.stringContaining("record 2 (d-2) does not match its digests; pruning stopped"));
  });

  it("keeps a removed record's id longer than any look-back, then lets it go; a resend meanwhile is a duplicate", async () => {
    const { source, ledger } = await sourceWithRecords(2, { recordDays: 7 });
    const prunedIds = () =>
      runInDurableObject(ledger, (_i, state) =>
        state.storage.sql
          .exec<{ delivery_id: string; seq: number; duplicate_count: number }>("SELECT delivery_id, seq, duplicate_count FROM pruned_ids ORDER BY seq")
          .toArray(),
      );
    vi.setSystemTime(T0 + 8 * DAY);
    await runDue(ledger);
    expect(await ledger.list({ limit: 10 })).toEqual([]);
    expect(await prunedIds()).toEqual([
      { delivery_id: "d-1", seq: 1, duplicate_count: 0 },
      { delivery_id: "d-2", seq: 2, duplicate_count: 0 },
    ]);
    expect(await ledger.knownDeliveries(["d-1", "d-3"])).toEqual([{ deliveryId: "d-1", provenance: null, pruned: true }]);
    expect(await ledger.record(recordInput({ source, deliveryId: "d-2" }))).toEqual({ status: "duplicate", seq: 2, duplicateCount: 1 });
    expect(await ledger.stats()).toMatchObject({ deliveries: 2, duplicates: 1 });

    // The longest look-back (90 days) is inside the time an id is kept.
    expect(reconcileScheduleSchema.safeParse({ lookbackHours: 90 * 24 }).success).toBe(true);
    expect(reconcileScheduleSchema.safeParse({ lookbackHours: 90 * 24 + 1 }).success).toBe(false);
    expect(PRUNED_ID_KEEP_MS).toBeGreaterThanOrEqual(90 * DAY + 7 * DAY);

    // Kept that long after receipt, then gone (the job is due for it by itself).
    vi.setSystemTime(T0 + PRUNED_ID_KEEP_MS - HOUR);
    await runDue(ledger);
    expect(await prunedIds()).toHaveLength(2);
    vi.setSystemTime(T0 + PRUNED_ID_KEEP_MS + 2 * HOUR);
    await runDue(ledger);
    expect(await prunedIds()).toEqual([]);
    expect(await ledger.knownDeliveries(["d-1"])).toEqual([]);
  });

  // Issue 16, item 3: one record with a hand-off that never completes stopped all pruning after it.
  it("prunes past a record whose hand-off is pending, keeps that one whole until it is handed, and says so", async () => {
    const source = freshId("ret");
    await putSource(source, { retention: { bodyDays: 1, recordDays: 7 } });
    const ledger = ledgerOf(source);
    await useSmallSegments(ledger);
    // The outbox of target "down" refuses every push until `up`; what it takes is kept.
    let up = false;
    const taken: HandoffItem[] = [];
    await runInDurableObject(ledger, (instance) => {
      (instance as unknown as { outboxFor: () => { acceptHandoff(t: string, items: HandoffItem[]): Promise<unknown> } }).outboxFor = () => ({
        acceptHandoff: async (_t, items) => {
          if (!up) throw new Error("outbox unavailable");
          taken.push(...items);
        },
      });
    });
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const body = (i: number) => new TextEncoder().encode(`{"n":${i}}`);
    for (let i = 1; i <= 6; i++) {
      await ledger.record(recordInput({ source, deliveryId: `d-${i}`, body: body(i), targets: i === 2 ? ["down"] : [] }));
      clock.advance(1_000);
    }
    vi.setSystemTime(T0 + HOUR);
    await runDue(ledger); // archives 1-3 and 4-6
    expect((await ledger.lifecycle()).archive.archivedThrough).toBe(6);

    vi.setSystemTime(T0 + 2 * DAY);
    await runDue(ledger);
    const pruned = async () => Object.fromEntries((await ledger.list({ limit: 10 })).map((d) => [d.deliveryId, d.bodyPrunedAt !== null]));
    expect(await pruned()).toEqual({ "d-1": true, "d-2": false, "d-3": true, "d-4": true, "d-5": true, "d-6": true });
    expect((await ledger.lifecycle()).retention.heldBack).toEqual({ records: 1, seqs: [2] });

    vi.setSystemTime(T0 + 8 * DAY);
    await runDue(ledger);
    expect(await pruned()).toEqual({ "d-2": false });
    expect((await ledger.get("d-2"))!.body).toEqual(body(2));
    const lifecycle = (await (await admin(`/sources/${source}/lifecycle`)).json()) as { retention: Record<string, unknown> };
    expect(lifecycle.retention).toMatchObject({ recordsPrunedThrough: 6, prunedRecords: 5, heldBack: { records: 1, seqs: [2] } });
    expect(lifecycle.retention.heldBackNote).toBe("held back: 1 record held at seq 2 (a hand-off is pending; it keeps its body and record until it is handed)");
    const sourcePage = await exports.default.fetch(`http://relay.test/admin/ui/sources/${source}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(await sourcePage.text()).toContain("held back: 1 record held at seq 2");
    // The chain kept still verifies from the anchor, and an export starts there, not at the record held below it.
    await ledger.record(recordInput({ source, deliveryId: "d-7" }));
    expect(await verifyFully(ledger)).toMatchObject({ ok: true, fromSeq: 7, checked: 1 });
    expect(await ledger.exportRange(T0)).toMatchObject({ firstSeq: 7, lastSeq: 7 });

    // Handed at last: with its body; the next slice removes it too.
    up = true;
    vi.setSystemTime(T0 + 8 * DAY + 2 * HOUR);
    await runDue(ledger);
    expect(taken.map((i) => [i.deliveryId, new TextDecoder().decode(i.body)])).toEqual([["d-2", '{"n":2}']]);
    expect(await ledger.get("d-2")).toBeNull();
    expect(await ledger.knownDeliveries(["d-2"])).toEqual([{ deliveryId: "d-2", provenance: null, pruned: true }]);
    expect((await ledger.lifecycle()).retention).toMatchObject({ heldBack: null, prunedRecords: 6, recordsPrunedThrough: 6 });
  });
});
