import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { ARCHIVE_INITIAL } from "../../src/ledger/archive";
import { type SegmentManifest, segmentKeys, verifyLines } from "../../src/ledger/archive-format";
import { GENESIS } from "../../src/ledger/chain";
import { sha256Hex } from "../../src/lib/crypto";
import { freshId, ledgerOf } from "../support/helpers";
import { clockForEachTest, DAY, HOUR, T0 } from "../support/clock";
import { recordInput } from "../support/ledger";

const clock = clockForEachTest();

/** A ledger whose archive segments close at `records` records. */
async function smallSegments(source: string, records = 3) {
  const ledger = ledgerOf(source);
  await runInDurableObject(ledger, (instance) => void ((instance as unknown as { segmentLimits: object }).segmentLimits = { records, bytes: 1 << 20 }));
  return ledger;
}

/** Records `n` deliveries of `source`, one a second from now on; returns their ids. */
async function recordMany(ledger: ReturnType<typeof ledgerOf>, source: string, n: number, prefix = "d"): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${i + 1}`;
    await ledger.record(recordInput({ source, deliveryId: id, receivedAt: Date.now(), body: new TextEncoder().encode(`{"n":${i + 1}}`) }));
    ids.push(id);
    clock.advance(1_000);
  }
  return ids;
}

/** Fires the ledger's alarm until the archive job has nothing due before `until`. */
async function runArchive(ledger: ReturnType<typeof ledgerOf>) {
  for (let i = 0; i < 20; i++) {
    const due = await runInDurableObject(
      ledger,
      (_i, state) => state.storage.sql.exec("SELECT due_at FROM jobs WHERE kind = 'archive'").one().due_at as number | null,
    );
    if (due === null || due > Date.now()) return;
    await runDurableObjectAlarm(ledger);
  }
}

async function manifests(source: string): Promise<SegmentManifest[]> {
  const listed = await env.ARCHIVE.list({ prefix: `${source}/segments/` });
  const keys = listed.objects.map((o) => o.key).filter((k) => k.endsWith(".manifest.json"));
  return Promise.all(keys.map(async (k) => (await (await env.ARCHIVE.get(k))!.json()) as SegmentManifest));
}

async function text(key: string): Promise<string> {
  return (await env.ARCHIVE.get(key))!.text();
}

describe("archive to R2", () => {
  it("writes each closed segment once, with a manifest that chains to the previous one; the open tail waits for the end of its day", async () => {
    const source = freshId("arc");
    const ledger = await smallSegments(source);
    await recordMany(ledger, source, 7);
    vi.setSystemTime(T0 + HOUR); // the job runs within the hour
    await runArchive(ledger);
    const [m1, m2, ...rest] = await manifests(source);
    expect(rest).toEqual([]);
    expect(m1).toMatchObject({ firstSeq: 1, lastSeq: 3, count: 3, prevHeadHash: GENESIS, closedBy: "records", segment: segmentKeys(source, 1, 3).segment });
    expect(m2).toMatchObject({ firstSeq: 4, lastSeq: 6, count: 3, prevHeadHash: m1!.headHash, closedBy: "records" });
    for (const m of [m1!, m2!]) {
      const body = await text(m.segment);
      expect(sha256Hex(body)).toBe(m.sha256);
      expect(new TextEncoder().encode(body).byteLength).toBe(m.bytes);
      const checked = verifyLines(body, { seq: m.firstSeq - 1, hash: m.prevHeadHash }, m.segment);
      expect(checked).toMatchObject({ ok: true, verified: { records: 3, last: { seq: m.lastSeq, hash: m.headHash } } });
    }
    const [third] = await ledger.list({ limit: 1, q: "d-3" });
    expect(m1!.headHash).toBe(third!.recordHash);
    // Record 7 is the open tail of its day: archived once the day is over (plus the grace).
    vi.setSystemTime(T0 + DAY + 5 * 60_000);
    await runArchive(ledger);
    const all = await manifests(source);
    expect(all.at(-1)).toMatchObject({ firstSeq: 7, lastSeq: 7, prevHeadHash: m2!.headHash, closedBy: "day-end" });
    expect(
      await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("SELECT first_seq, last_seq FROM segments ORDER BY first_seq").toArray()),
    ).toEqual([
      { first_seq: 1, last_seq: 3 },
      { first_seq: 4, last_seq: 6 },
      { first_seq: 7, last_seq: 7 },
    ]);
  });

  it("closes a segment at the first record of another UTC day", async () => {
    const source = freshId("arc");
    const ledger = await smallSegments(source, 1000);
    await recordMany(ledger, source, 2, "a");
    vi.setSystemTime(T0 + DAY + 10);
    await recordMany(ledger, source, 1, "b");
    vi.setSystemTime(T0 + DAY + HOUR);
    await runArchive(ledger);
    expect(await manifests(source)).toEqual([expect.objectContaining({ firstSeq: 1, lastSeq: 2, closedBy: "next-day" })]);
  });

  it("after a crash between its puts and its progress, finds the identical objects and goes on, never writing twice", async () => {
    const source = freshId("arc");
    const ledger = await smallSegments(source);
    await recordMany(ledger, source, 3);
    vi.setSystemTime(T0 + HOUR);
    await runArchive(ledger);
    const key = segmentKeys(source, 1, 3);
    const before = await env.ARCHIVE.head(key.segment);
    // The progress is lost as if the object died after writing both objects: only the plan survived.
    await runInDurableObject(ledger, async (_i, state) => {
      const sql = state.storage.sql;
      const job = JSON.parse(sql.exec("SELECT state FROM jobs WHERE kind = 'archive'").one().state as string);
      sql.exec("DELETE FROM segments");
      sql.exec(
        "UPDATE jobs SET due_at = ?, state = ? WHERE kind = 'archive'",
        Date.now(),
        JSON.stringify({ ...ARCHIVE_INITIAL, pending: { firstSeq: 1, lastSeq: 3, closedBy: "records", createdAt: T0 + HOUR } }),
      );
      expect(job.through.seq).toBe(3);
      await state.storage.setAlarm(Date.now());
    });
    clock.advance(60_000);
    await runArchive(ledger);
    const after = await env.ARCHIVE.head(key.segment);
    expect(after!.uploaded).toEqual(before!.uploaded);
    expect(after!.etag).toBe(before!.etag);
    const job = await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("SELECT state, last_error FROM jobs WHERE kind = 'archive'").one());
    expect(job.last_error).toBeNull();
    expect(JSON.parse(job.state as string)).toMatchObject({ through: { seq: 3 }, segments: 1, pending: null });
  });

  it("stops, and overwrites nothing, when another object is under the key of the segment it would write", async () => {
    const source = freshId("arc");
    const ledger = await smallSegments(source);
    await recordMany(ledger, source, 3);
    const key = segmentKeys(source, 1, 3).segment;
    await env.ARCHIVE.put(key, "not ours\n");
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.setSystemTime(T0 + HOUR);
    await runDurableObjectAlarm(ledger);
    expect(await text(key)).toBe("not ours\n");
    expect(await env.ARCHIVE.head(segmentKeys(source, 1, 3).manifest)).toBeNull();
    const job = await runInDurableObject(ledger, (_i, state) =>
      state.storage.sql.exec("SELECT due_at, state, last_error FROM jobs WHERE kind = 'archive'").one(),
    );
    expect(job.last_error).toContain("already exists in the archive with other content");
    expect(JSON.parse(job.state as string)).toMatchObject({ through: { seq: 0 }, segments: 0 });
    expect(job.due_at).toBeGreaterThan(Date.now());
    expect(errors).toHaveBeenCalledWith(expect.stringContaining("ledger archive halted"));
  });

  it("refuses to archive a record that does not verify", async () => {
    const source = freshId("arc");
    const ledger = await smallSegments(source);
    await recordMany(ledger, source, 3);
    await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("UPDATE deliveries SET kind = 'edited' WHERE seq = 2"));
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.setSystemTime(T0 + HOUR);
    await runDurableObjectAlarm(ledger);
    expect(await manifests(source)).toEqual([]);
    const job = await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("SELECT last_error FROM jobs WHERE kind = 'archive'").one());
    expect(job.last_error).toContain("record 2 (d-2) does not verify");
  });
});

describe("archive and export format (golden files: test/support/archive, read by test-node/verify-archive.test.ts)", () => {
  it("matches the files the offline verifier's tests use", async () => {
    // Fixed inputs and clock: the bytes are the same on every run.
    const source = "golden";
    const ledger = await smallSegments(source);
    for (let i = 1; i <= 7; i++) {
      await ledger.record(
        recordInput({
          source,
          deliveryId: `golden-${i}`,
          receivedAt: T0 + i * 60_000,
          kind: i === 5 ? "unknown" : "upload.completed",
          attention: i === 5 ? "unknown event" : null,
          body: new TextEncoder().encode(`{"uploadId":"${1000 + i}","status":"completed"}`),
          envelope: JSON.stringify({ specversion: "1.0", id: `golden-${i}`, data: { uploadId: String(1000 + i) } }),
        }),
      );
    }
    vi.setSystemTime(T0 + DAY + HOUR);
    await runArchive(ledger);
    const found = await env.ARCHIVE.list({ prefix: "golden/" });
    expect(found.objects.map((o) => o.key)).toHaveLength(6);
    for (const o of found.objects) await expect(await text(o.key)).toMatchFileSnapshot(`../support/archive/${o.key}`);
    const range = (await ledger.exportRange(T0 + 2 * 60_000, T0 + 6 * 60_000))!;
    let exported = "";
    for (let next: number | null = range.firstSeq; next !== null;) {
      const page = await ledger.exportPage(next, range.lastSeq);
      exported += page.text;
      next = page.next;
    }
    await expect(exported).toMatchFileSnapshot("../support/archive/export-golden-2-5.ndjson");
  });
});
