import { bumpCounter, bumpCounters } from "../lib/counters";
import { sha256Hex } from "../lib/crypto";
import { nextHour } from "./archive";
import { CURRENT_CHAIN_VERSION, type ChainFields, type ChainVersion, GENESIS, linkHash } from "./chain";
import { planHandoffs } from "./handoff";
import { scheduleJob } from "./jobs";
import { acceptedCounter, COUNTER, duplicatesCounter } from "./queries";
import type { RecordInput, RecordResult } from "./types";

/**
 * The record transaction of a ledger: a delivery, its hash-chain link, its search keys and its
 * planned hand-offs in one transaction, idempotent on the delivery id. Owns the `deliveries` insert;
 * talks to its Durable Object through `RecordHost` (its SQL and a synchronous transaction) and the
 * `RecordMemo` the instance keeps between calls.
 */

/** How far back a body is compared with earlier deliveries' (7 days: CentrePoint retries for 48 h, and a resend from the portal may come later). */
export const SAME_BODY_HORIZON_MS = 7 * 86_400_000;

/** What the record transaction needs of its Durable Object. */
export interface RecordHost {
  sql: SqlStorage;
  transaction: <T>(f: () => T) => T;
}

/**
 * What this instance knows of its ledger, so a record reads less: the chain's head as last
 * committed, whether the source id is stored, whether the archive job is known to be scheduled
 * (null: not known yet). Moves on only after a commit.
 */
export interface RecordMemo {
  head: { seq: number; hash: string } | null;
  sourceStored: boolean;
  archiveScheduled: boolean | null;
}

export function newRecordMemo(): RecordMemo {
  return { head: null, sourceStored: false, archiveScheduled: null };
}

/** One `deliveries` row as written: the chain's fields with the payload and the row's own columns. */
export type DeliveryInsert = ChainFields & { body: Uint8Array; envelope: string; recordHash: string; lastSeenAt: number; chainVersion: ChainVersion };

/** Inserts one `deliveries` row (one row written). */
export function insertDelivery(sql: SqlStorage, row: DeliveryInsert): void {
  sql.exec(
    `INSERT INTO deliveries (seq, delivery_id, id_derived, event, kind, subject, attention, received_at, source_ip, headers, body, body_sha256,
       envelope, envelope_sha256, prev_hash, record_hash, last_seen_at, chain_version, provenance, same_body_as)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    row.seq,
    row.deliveryId,
    row.idDerived ? 1 : 0,
    row.event,
    row.kind,
    row.subject,
    row.attention,
    row.receivedAt,
    row.sourceIp,
    row.headers,
    row.body,
    row.bodySha256,
    row.envelope,
    row.envelopeSha256,
    row.prevHash,
    row.recordHash,
    row.lastSeenAt,
    row.chainVersion,
    row.provenance,
    row.sameBodyAs,
  );
}

/** Records a delivery (or counts a duplicate) in one transaction; durable when the host's transaction commits. */
export function recordDelivery(host: RecordHost, input: RecordInput, memo: RecordMemo): RecordResult {
  const { sql } = host;
  const result = host.transaction((): RecordResult & { hash?: string } => {
    // A record kept, or one retention removed lately (its id is kept: a resend stays a duplicate). One statement, two index probes.
    const existing = sql
      .exec<{ seq: number; duplicate_count: number; kind: string; removed: number }>(
        `SELECT seq, duplicate_count, kind, 0 AS removed FROM deliveries WHERE delivery_id = ?
         UNION ALL SELECT seq, duplicate_count, kind, 1 AS removed FROM pruned_ids WHERE delivery_id = ?`,
        input.deliveryId,
        input.deliveryId,
      )
      .toArray()[0];
    if (existing) {
      if (existing.removed) sql.exec("UPDATE pruned_ids SET duplicate_count = duplicate_count + 1 WHERE delivery_id = ?", input.deliveryId);
      else sql.exec("UPDATE deliveries SET duplicate_count = duplicate_count + 1, last_seen_at = ? WHERE seq = ?", input.receivedAt, existing.seq);
      bumpCounter(sql, duplicatesCounter(existing.kind));
      return { status: "duplicate", seq: existing.seq, duplicateCount: existing.duplicate_count + 1 };
    }
    const head = chainHead(sql, memo);
    const seq = head ? head.seq + 1 : 1;
    const bodySha256 = sha256Hex(input.body);
    const sameBodyAs = earlierWithSameBody(sql, bodySha256, input.receivedAt);
    let attention = input.attention;
    let envelope = input.envelope;
    if (sameBodyAs !== null) {
      const note = `same body as delivery ${sameBodyAs} under a new id: a resend with a new id, or a captured request posted again`;
      attention = attention === null ? note : `${attention}; ${note}`;
      envelope = withExtension(envelope, "samebodyas", sameBodyAs);
    }
    const fields: ChainFields = {
      prevHash: head ? head.hash : GENESIS,
      seq,
      deliveryId: input.deliveryId,
      idDerived: input.idDerived,
      event: input.event,
      kind: input.kind,
      subject: input.subject,
      attention,
      receivedAt: input.receivedAt,
      sourceIp: input.sourceIp,
      headers: JSON.stringify(input.headers),
      bodySha256,
      envelopeSha256: sha256Hex(envelope),
      provenance: input.provenance ?? "webhook",
      sameBodyAs,
    };
    const recordHash = linkHash(CURRENT_CHAIN_VERSION, fields);
    insertDelivery(sql, { ...fields, body: input.body, envelope, recordHash, lastSeenAt: input.receivedAt, chainVersion: CURRENT_CHAIN_VERSION });
    for (const key of new Set(input.searchKeys ?? [])) sql.exec("INSERT OR IGNORE INTO search_keys (value, seq) VALUES (?, ?)", key, seq);
    planHandoffs(sql, input.deliveryId, input.receivedAt, input.targets, input.unfilteredTargets ?? [], input.handoffPlans);
    bumpCounters(sql, { [acceptedCounter(input.kind)]: 1, [COUNTER.attention]: attention === null ? 0 : 1 });
    if (!memo.sourceStored) sql.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('source', ?)", input.source);
    // A record waits for its archive segment: the archive job looks again within the hour (once per idle spell).
    if (memo.archiveScheduled !== true) scheduleJob(sql, "archive", nextHour(input.receivedAt));
    return { status: "accepted", seq, duplicateCount: 0, hash: recordHash };
  });
  if (result.status === "accepted") {
    // Committed: only now does this instance's view of the head move on.
    memo.head = { seq: result.seq, hash: result.hash! };
    memo.sourceStored = true;
    memo.archiveScheduled = true;
  }
  return { status: result.status, seq: result.seq, duplicateCount: result.duplicateCount };
}

/** The last record's seq and hash (null for an empty ledger), from the memo once read. */
export function chainHead(sql: SqlStorage, memo: RecordMemo): { seq: number; hash: string } | null {
  if (memo.head === null) {
    const row = sql.exec<{ seq: number; record_hash: string }>("SELECT seq, record_hash FROM deliveries ORDER BY seq DESC LIMIT 1").toArray()[0];
    if (row) memo.head = { seq: row.seq, hash: row.record_hash };
  }
  return memo.head;
}

/** The earliest delivery within the horizon whose body has this hash, or null. */
function earlierWithSameBody(sql: SqlStorage, bodySha256: string, receivedAt: number): string | null {
  const row = sql
    .exec<{ delivery_id: string }>(
      "SELECT delivery_id FROM deliveries WHERE body_sha256 = ? AND received_at >= ? ORDER BY received_at, seq LIMIT 1",
      bodySha256,
      receivedAt - SAME_BODY_HORIZON_MS,
    )
    .toArray()[0];
  return row?.delivery_id ?? null;
}

/** Adds a CloudEvents extension attribute to a serialized envelope, keeping `data` last. */
function withExtension(envelope: string, name: string, value: string): string {
  const { data, ...attributes } = JSON.parse(envelope) as Record<string, unknown>;
  return JSON.stringify({ ...attributes, [name]: value, data });
}
