import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import { GENESIS, linkHash } from "../../src/ledger/chain";
import type { IntegrityReport } from "../../src/ledger/queries";
import type { RecordInput } from "../../src/ledger/types";
import { sha256Hex } from "../../src/lib/crypto";
import type { ledgerOf } from "./helpers";

/** A factory for what ingress hands to the ledger. */
export function recordInput(overrides: Partial<RecordInput> = {}): RecordInput {
  return {
    source: "src-1",
    deliveryId: crypto.randomUUID(),
    idDerived: false,
    event: "upload",
    kind: "upload.completed",
    subject: "studies/1/subjects/2",
    attention: null,
    receivedAt: Date.now(),
    sourceIp: "13.82.60.74",
    headers: { "x-actigraph-event": "upload", "x-actigraph-signature": "sig", authorization: "[redacted]" },
    body: new TextEncoder().encode('{"status":"completed"}'),
    envelope: '{"specversion":"1.0"}',
    targets: [],
    ...overrides,
  };
}

/**
 * The ledger's on-write counters agree with a recount of its rows (nothing pruned): accepted and
 * duplicate copies per kind, attention, handshake rows (pending hand-offs are counted from their rows, not kept).
 */
export async function expectLedgerCountersMatchRows(ledger: ReturnType<typeof ledgerOf>): Promise<void> {
  const [counted, stored] = await runInDurableObject(ledger, (_, state) => {
    const sql = state.storage.sql;
    const rows = [
      ...sql.exec("SELECT 'accepted:' || kind AS name, COUNT(*) AS n FROM deliveries GROUP BY kind"),
      ...sql.exec("SELECT 'duplicates:' || kind AS name, SUM(duplicate_count) AS n FROM deliveries GROUP BY kind"),
      ...sql.exec("SELECT 'attention' AS name, COUNT(*) AS n FROM deliveries WHERE attention IS NOT NULL"),
      ...sql.exec("SELECT 'handshakes:kept' AS name, COUNT(*) AS n FROM handshakes"),
    ].filter((r) => r.n !== 0);
    const counters = sql
      .exec("SELECT name, value FROM counters WHERE name NOT LIKE 'rejected:%' AND name NOT LIKE 'pruned:%' AND name != 'handshakes:dropped' AND value != 0")
      .toArray();
    return [Object.fromEntries(rows.map((r) => [r.name, r.n])), Object.fromEntries(counters.map((r) => [r.name, r.value]))];
  });
  expect(stored).toEqual(counted);
}

/**
 * Runs a full re-verification to its end, as production does (its first slice at once, the rest
 * one slice per alarm run), and returns the report.
 */
export async function verifyFully(ledger: ReturnType<typeof ledgerOf>): Promise<IntegrityReport> {
  let status = await ledger.checkIntegrity({ full: true });
  for (let i = 0; status.running && i < 10_000; i++) {
    await runDurableObjectAlarm(ledger);
    status = await ledger.integrity();
  }
  expect(status.running).toBeNull();
  return status.report!;
}

/** Fires a Durable Object's alarm while it is armed for now or earlier (bounded): everything due at this time runs. */
export async function runDue(stub: DurableObjectStub): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const at = await runInDurableObject(stub, (_i, state: DurableObjectState) => state.storage.getAlarm());
    if (at === null || at > Date.now()) return;
    await runDurableObjectAlarm(stub);
  }
  throw new Error("the alarm stayed due after 50 runs");
}

/** Makes a ledger's archive segments close at `records` records. */
export async function useSmallSegments(ledger: ReturnType<typeof ledgerOf>, records = 3): Promise<void> {
  await runInDurableObject(ledger, (instance) => void ((instance as unknown as { segmentLimits: object }).segmentLimits = { records, bytes: 1 << 20 }));
}

/**
 * Writes records as a ledger did before chain version 2 (no envelope digest stored, version 1
 * links, kind `unknown`, event `upload`), seq 1.. from the chain's start, received now; returns
 * their record hashes.
 */
export function insertVersion1Records(sql: SqlStorage, records: readonly { deliveryId: string; body: string; envelope: string }[]): string[] {
  let prev = GENESIS;
  return records.map(({ deliveryId, body, envelope }, i) => {
    const bytes = new TextEncoder().encode(body);
    const fields = {
      prevHash: prev,
      seq: i + 1,
      deliveryId,
      idDerived: false,
      event: "upload",
      kind: "unknown",
      subject: null,
      attention: null,
      receivedAt: Date.now(),
      sourceIp: "13.82.60.74",
      headers: "{}",
      bodySha256: sha256Hex(bytes),
      envelopeSha256: sha256Hex(envelope),
      provenance: "webhook",
      sameBodyAs: null,
    };
    const hash = linkHash(1, fields);
    sql.exec(
      `INSERT INTO deliveries (seq, delivery_id, id_derived, event, kind, subject, attention, received_at, source_ip, headers, body, body_sha256, envelope, prev_hash, record_hash, last_seen_at, chain_version)
       VALUES (?, ?, 0, 'upload', 'unknown', NULL, NULL, ?, '13.82.60.74', '{}', ?, ?, ?, ?, ?, ?, 1)`,
      fields.seq,
      deliveryId,
      fields.receivedAt,
      bytes,
      fields.bodySha256,
      envelope,
      prev,
      hash,
      fields.receivedAt,
    );
    prev = hash;
    return hash;
  });
}
