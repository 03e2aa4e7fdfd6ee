import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { HandoffItem } from "../../src/outbox/types";
import { COUNTER_SET_MIGRATION } from "../../src/lib/counters";
import { freshId, ledgerOf } from "../support/helpers";
import { clockForEachTest } from "../support/clock";
import { expectLedgerCountersMatchRows, recordInput, verifyFully } from "../support/ledger";

// Controlled clock: alarms armed at test time (year 2100) never fire on their own; tests fire them.
const { advance } = clockForEachTest({ quiet: [] });

/** The ledger's push seam (src/ledger/ledger.ts `outboxFor`). */
type PushSeam = { outboxFor: (targetId: string) => { acceptHandoff(targetId: string, items: HandoffItem[]): Promise<unknown> } };

describe("hash chain", () => {
  it("links each record to the previous one", async () => {
    const ledger = ledgerOf(freshId("l"));
    await ledger.record(recordInput({ deliveryId: "a" }));
    await ledger.record(recordInput({ deliveryId: "b" }));
    const [b, a] = await ledger.list({ limit: 10 });
    const rows = await runInDurableObject(ledger, (_i, state) =>
      state.storage.sql.exec("SELECT seq, prev_hash, record_hash FROM deliveries ORDER BY seq").toArray(),
    );
    expect(rows[0]!.prev_hash).toBe("0".repeat(64));
    expect(rows[1]!.prev_hash).toBe(rows[0]!.record_hash);
    expect([a!.recordHash, b!.recordHash]).toEqual([rows[0]!.record_hash, rows[1]!.record_hash]);
  });

  it("names the first record whose body was altered", async () => {
    const ledger = ledgerOf(freshId("l"));
    for (const id of ["a", "b", "c"]) await ledger.record(recordInput({ deliveryId: id }));
    await runInDurableObject(ledger, (_i, state) => {
      state.storage.sql.exec("UPDATE deliveries SET body = ? WHERE delivery_id = 'b'", new TextEncoder().encode('{"status":"error"}'));
    });
    expect(await verifyFully(ledger)).toMatchObject({
      ok: false,
      checked: 1,
      firstBroken: { seq: 2, deliveryId: "b", reason: "body does not match its SHA-256" },
    });
  });

  it("detects a rewritten record whose body hash was recomputed too", async () => {
    const ledger = ledgerOf(freshId("l"));
    for (const id of ["a", "b"]) await ledger.record(recordInput({ deliveryId: id }));
    await runInDurableObject(ledger, (_i, state) => {
      state.storage.sql.exec("UPDATE deliveries SET kind = 'upload.error' WHERE delivery_id = 'a'");
    });
    expect((await verifyFully(ledger)).firstBroken).toMatchObject({ seq: 1, reason: "record_hash does not match the record's contents" });
  });

  it("detects a deleted record", async () => {
    const ledger = ledgerOf(freshId("l"));
    for (const id of ["a", "b", "c"]) await ledger.record(recordInput({ deliveryId: id }));
    await runInDurableObject(ledger, (_i, state) => {
      state.storage.sql.exec("DELETE FROM deliveries WHERE delivery_id = 'b'");
    });
    expect((await verifyFully(ledger)).firstBroken).toMatchObject({ seq: 3, reason: "record 2 is missing" });
  });

  it("leaves the chain unchanged when a duplicate arrives", async () => {
    const ledger = ledgerOf(freshId("l"));
    await ledger.record(recordInput({ deliveryId: "a" }));
    const before = await verifyFully(ledger);
    expect(await ledger.record(recordInput({ deliveryId: "a" }))).toMatchObject({ status: "duplicate", duplicateCount: 1 });
    expect({ ...(await verifyFully(ledger)), checkedAt: 0 }).toEqual({ ...before, checkedAt: 0 });
  });
});

describe("hand-off", () => {
  it("plans one hand-off per target atomically with the record", async () => {
    const ledger = ledgerOf(freshId("l"));
    await runInDurableObject(ledger, async (instance, state) => {
      // Inside the object, before the alarm can run: the rows exist as soon as record resolves.
      await instance.record(recordInput({ deliveryId: "h-1", targets: ["t-1", "t-2", "t-1"] }));
      const rows = state.storage.sql.exec("SELECT target_id FROM handoffs WHERE delivery_id = 'h-1' ORDER BY target_id").toArray();
      expect(rows.map((r) => r.target_id)).toEqual(["t-1", "t-2"]);
      expect(await state.storage.getAlarm()).not.toBeNull();
    });
  });

  it("marks hand-offs done once the outboxes acknowledged them, and the outbox holds the item", async () => {
    const source = freshId("l");
    const target = freshId("t");
    const ledger = ledgerOf(source);
    await ledger.record(recordInput({ source, deliveryId: "h-2", targets: [target] }));
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    // Running it again is harmless: nothing is due, nothing is pushed twice.
    await runInDurableObject(ledger, (instance) => instance.alarm());
    const detail = await ledger.get("h-2");
    expect(detail?.handoffs[0]?.handedAt).not.toBeNull();
    const outbox = env.OUTBOX.get(env.OUTBOX.idFromName(target));
    expect(await outbox.getDispatch(source, "h-2")).not.toBeNull();
  });

  it("keeps planned hand-offs across an eviction before the alarm ran", async () => {
    const source = freshId("l");
    const ledger = ledgerOf(source);
    await ledger.record(recordInput({ source, deliveryId: "h-3", targets: ["t-x"] }));
    await evictDurableObject(ledger);
    expect((await ledger.get("h-3"))?.handoffs).toHaveLength(1);
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    expect((await ledger.get("h-3"))?.handoffs[0]?.handedAt).not.toBeNull();
  });

  it("retries a failed hand-off later instead of losing it", async () => {
    const source = freshId("l");
    const ledger = ledgerOf(source);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    await runInDurableObject(ledger, (instance) => {
      (instance as unknown as PushSeam).outboxFor = () => ({ acceptHandoff: () => Promise.reject(new Error("outbox unavailable")) });
    });
    await ledger.record(recordInput({ source, deliveryId: "h-4", targets: ["t-y"] }));
    // The alarm waits for the push that record started, and finds nothing due yet.
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    const h = (await ledger.get("h-4"))?.handoffs[0];
    expect(h).toMatchObject({ handedAt: null, tries: 1, lastError: "outbox unavailable" });
    const retryAt = await runInDurableObject(ledger, (_i, state) => state.storage.getAlarm());
    expect(retryAt).toBeGreaterThan(Date.now());
    // The outbox answers again (a fresh instance has the real seam): the alarm at the retry time hands it over.
    await evictDurableObject(ledger);
    vi.setSystemTime(retryAt!);
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    expect((await ledger.get("h-4"))?.handoffs[0]?.handedAt).not.toBeNull();
  });
});

describe("hand-off lanes", () => {
  it("pushes to each target on its own: an outbox that does not answer delays no other target", async () => {
    const source = freshId("l");
    const ledger = ledgerOf(source);
    const fast: string[] = [];
    const slow: string[] = [];
    let answerSlow = () => {};
    const slowAnswered = new Promise<void>((resolve) => (answerSlow = resolve));
    await runInDurableObject(ledger, (instance) => {
      (instance as unknown as PushSeam).outboxFor = (targetId) => ({
        acceptHandoff: async (_t, items) => {
          const ids = items.map((i) => i.deliveryId);
          if (targetId === "t-fast") return void fast.push(...ids);
          slow.push(...ids);
          await slowAnswered;
        },
      });
    });
    /** Waits (bounded) until `done()` holds, letting the ledger's background pushes run. */
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
      return done();
    };
    await ledger.record(recordInput({ source, deliveryId: "lane-1", targets: ["t-slow", "t-fast"] }));
    expect(await until(() => fast.includes("lane-1") && slow.includes("lane-1"))).toBe(true);
    // t-slow has not answered lane-1: t-fast still gets lane-2 and lane-3 at once.
    await ledger.record(recordInput({ source, deliveryId: "lane-2", targets: ["t-slow", "t-fast"] }));
    await ledger.record(recordInput({ source, deliveryId: "lane-3", targets: ["t-slow", "t-fast"] }));
    expect(await until(() => fast.length === 3)).toBe(true);
    expect(fast).toEqual(["lane-1", "lane-2", "lane-3"]);
    // One push per target at a time: lane-2 and lane-3 wait for t-slow's answer, then go together, in order.
    expect(slow).toEqual(["lane-1"]);
    answerSlow();
    expect(await until(() => slow.length === 3)).toBe(true);
    expect(slow).toEqual(["lane-1", "lane-2", "lane-3"]);
    const handed = async () =>
      (await Promise.all(["lane-1", "lane-2", "lane-3"].map((id) => ledger.get(id)))).flatMap((d) => d!.handoffs.map((h) => h.handedAt));
    for (let i = 0; i < 100 && (await handed()).includes(null); i++) await new Promise((r) => setTimeout(r, 5));
    expect((await handed()).every((at) => at !== null)).toBe(true);
  });
});

describe("integrity reports", () => {
  it("are read back without a check: integrity() shows the stored report, a new run finds what changed since", async () => {
    const ledger = ledgerOf(freshId("l"));
    for (const id of ["a", "b"]) await ledger.record(recordInput({ deliveryId: id }));
    const first = await verifyFully(ledger);
    await runInDurableObject(ledger, (_i, state) => {
      state.storage.sql.exec("UPDATE deliveries SET kind = 'upload.error' WHERE delivery_id = 'b'");
    });
    expect((await ledger.integrity()).report).toEqual(first);
    expect(await verifyFully(ledger)).toMatchObject({ ok: false, firstBroken: { seq: 2 } });
  });

  it("resume from the stored checkpoint: an incremental run verifies only the records after it, a full run everything", async () => {
    const ledger = ledgerOf(freshId("l"));
    for (const id of ["a", "b", "c"]) await ledger.record(recordInput({ deliveryId: id }));
    expect((await ledger.checkIntegrity()).report).toMatchObject({ ok: true, mode: "incremental", checked: 3, fromSeq: 1, verifiedThrough: 3 });
    // Tamper with a record the checkpoint already covers, then add two: the incremental run starts after the checkpoint.
    await runInDurableObject(ledger, (_i, state) => {
      state.storage.sql.exec("UPDATE deliveries SET body = ? WHERE delivery_id = 'b'", new TextEncoder().encode("{}"));
    });
    for (const id of ["d", "e"]) await ledger.record(recordInput({ deliveryId: id }));
    await evictDurableObject(ledger); // the checkpoint is stored, not held in memory
    expect((await ledger.checkIntegrity()).report).toMatchObject({ ok: true, mode: "incremental", checked: 2, fromSeq: 4, verifiedThrough: 5 });
    expect(await verifyFully(ledger)).toMatchObject({ ok: false, mode: "full", checked: 1, firstBroken: { seq: 2, deliveryId: "b" } });
    // A break is sticky: the checkpoint moved back before it, so the next incremental run finds it again.
    expect((await ledger.checkIntegrity()).report).toMatchObject({ ok: false, mode: "incremental", fromSeq: 2, firstBroken: { seq: 2 } });
  });

  it("resume a run cut into slices across alarm runs and evictions, each slice reading at most its limit", async () => {
    const ledger = ledgerOf(freshId("l"));
    await runInDurableObject(ledger, (instance) => void ((instance as unknown as { integritySlice: object }).integritySlice = { rows: 2, bytes: 1 << 20 }));
    for (let i = 0; i < 5; i++) await ledger.record(recordInput({ deliveryId: `s-${i}` }));
    expect((await ledger.checkIntegrity()).running).toMatchObject({ mode: "incremental", through: 2, upTo: 5, checked: 2 });
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    expect((await ledger.integrity()).running).toMatchObject({ through: 4, checked: 4 });
    await evictDurableObject(ledger); // a fresh instance has the default slice: it finishes the run from where it got to
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    expect(await ledger.integrity()).toMatchObject({ running: null, verifiedThrough: 5, report: { ok: true, checked: 5, fromSeq: 1 } });
  });

  it("run a full re-verification in slices from the alarm while record() calls are accepted between them", async () => {
    const ledger = ledgerOf(freshId("l"));
    await runInDurableObject(ledger, (instance) => void ((instance as unknown as { integritySlice: object }).integritySlice = { rows: 2, bytes: 1 << 20 }));
    for (let i = 0; i < 5; i++) await ledger.record(recordInput({ deliveryId: `f-${i}` }));
    const progress: number[] = [];
    let status = await ledger.checkIntegrity({ full: true });
    const accepted: number[] = [];
    for (let i = 0; status.running && i < 10; i++) {
      progress.push(status.running.through);
      // Between two slices the ledger takes new deliveries at once.
      accepted.push((await ledger.record(recordInput({ deliveryId: `between-${i}` }))).seq);
      expect(await runDurableObjectAlarm(ledger)).toBe(true);
      status = await ledger.integrity();
    }
    expect(progress).toEqual([2, 4]);
    expect(accepted).toEqual([6, 7]);
    // The full run covered the records there were when it started; the next incremental run takes the rest.
    expect(status.report).toMatchObject({ ok: true, mode: "full", checked: 5, verifiedThrough: 5 });
    expect((await ledger.checkIntegrity()).report).toMatchObject({ ok: true, mode: "incremental", fromSeq: 6, verifiedThrough: 7 });
  });

  it("checks every source's ledger from the Cron Trigger and logs a broken chain as an error", async () => {
    const { createExecutionContext, createScheduledController, waitOnExecutionContext } = await import("cloudflare:test");
    const { default: worker } = await import("../../src/index");
    const { putSource } = await import("../support/helpers");
    const intact = freshId();
    const broken = freshId();
    for (const s of [intact, broken]) {
      await putSource(s);
      await ledgerOf(s).record(recordInput({ source: s, deliveryId: "x" }));
    }
    await runInDurableObject(ledgerOf(broken), (_i, state) => {
      state.storage.sql.exec("UPDATE deliveries SET body = ? WHERE delivery_id = 'x'", new TextEncoder().encode("{}"));
    });
    const errors: string[] = [];
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const spy = vi.spyOn(console, "error").mockImplementation((line: unknown) => void errors.push(String(line)));
    const ctx = createExecutionContext();
    const before = Date.now();
    await worker.scheduled(createScheduledController({ cron: "17 3 * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    spy.mockRestore();
    expect((await ledgerOf(intact).integrity()).report).toMatchObject({ ok: true, checked: 1 });
    expect((await ledgerOf(intact).integrity()).report!.checkedAt).toBeGreaterThanOrEqual(before);
    expect(errors.map((l) => JSON.parse(l) as { msg: string; source: string })).toContainEqual(
      expect.objectContaining({ msg: "ledger integrity broken", source: broken }),
    );
    expect(errors.some((l) => l.includes(intact))).toBe(false);
  });
});

describe("counters", () => {
  it("are kept on write: stats and metrics read them, and they agree with a recount of the rows", async () => {
    const source = freshId("l");
    const target = freshId("t");
    const ledger = ledgerOf(source);
    await runInDurableObject(ledger, (instance) => void ((instance as unknown as { handshakeCap: number }).handshakeCap = 2));
    await ledger.record(recordInput({ source, deliveryId: "a", kind: "upload.completed", targets: [target] }));
    await ledger.record(recordInput({ source, deliveryId: "b", kind: "unknown", attention: "unknown event", targets: [target] }));
    await ledger.record(recordInput({ source, deliveryId: "a", kind: "upload.completed" }));
    await ledger.record(recordInput({ source, deliveryId: "a", kind: "upload.completed" }));
    for (let i = 0; i < 3; i++)
      await ledger.recordHandshake({ receivedAt: Date.now(), sourceIp: null, webhookId: null, deliveryId: null, authenticated: true, outcome: "echoed" });
    expect(await ledger.stats()).toMatchObject({ deliveries: 2, duplicates: 2, attention: 1, handshakes: 2 });
    await expectLedgerCountersMatchRows(ledger);
    await runDurableObjectAlarm(ledger); // hands both over
    expect((await ledger.stats()).pendingHandoffs).toBe(0);
    expect((await ledger.metrics()).kinds).toEqual([
      { kind: "unknown", accepted: 1, duplicates: 0 },
      { kind: "upload.completed", accepted: 1, duplicates: 2 },
    ]);
    await expectLedgerCountersMatchRows(ledger);
  });

  it("are filled from the rows by their migration, for ledgers that had data before", async () => {
    const { LEDGER_MIGRATIONS } = await import("../../src/ledger/schema");
    const ledger = ledgerOf(freshId("l"));
    await ledger.record(recordInput({ deliveryId: "a", targets: ["t-1"] }));
    await ledger.record(recordInput({ deliveryId: "a" }));
    await ledger.record(recordInput({ deliveryId: "b", kind: "unknown", attention: "x" }));
    const before = await ledger.stats();
    await runInDurableObject(ledger, (_i, state) => {
      // Back to the table of counters the fill migration wrote into, then forward to the one-row form.
      state.storage.sql.exec("DROP VIEW counters; DROP TABLE counter_set; CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
      state.storage.sql.exec(LEDGER_MIGRATIONS.find((m) => m.includes("'accepted:' || kind"))!);
      state.storage.sql.exec(COUNTER_SET_MIGRATION);
      state.storage.sql.exec(LEDGER_MIGRATIONS.find((m) => m.includes("handoffs_keyed"))!); // hand-offs keyed, their pending count no longer kept
      state.storage.sql.exec("ALTER TABLE counter_set ADD COLUMN hour INTEGER"); // the hourly snapshots' column (its table is still there)
    });
    expect(await ledger.stats()).toEqual(before);
    await expectLedgerCountersMatchRows(ledger);
  });
});

describe("large batches", () => {
  it("hands over more due rows than SQLite's 100 bound parameters in one alarm run", async () => {
    const source = freshId("l");
    const target = freshId("t");
    const ledger = ledgerOf(source);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    await runInDurableObject(ledger, (instance) => {
      (instance as unknown as PushSeam).outboxFor = () => ({ acceptHandoff: () => Promise.reject(new Error("outbox unavailable")) });
    });
    for (let i = 0; i < 150; i++) await ledger.record(recordInput({ source, deliveryId: `big-${i}`, targets: [target] }));
    await runDurableObjectAlarm(ledger); // waits for the failing pushes
    await evictDurableObject(ledger); // the outbox answers again
    advance(10 * 60_000); // every retry is due
    await runDurableObjectAlarm(ledger);
    expect((await ledger.stats()).pendingHandoffs).toBe(0);
    expect((await env.OUTBOX.get(env.OUTBOX.idFromName(target)).health()).counts.pending).toBe(150);
  });
});
