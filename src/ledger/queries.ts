import { readCounter, readCounters } from "../lib/counters";
import { growth, hourlyTrend, type TrendPoint } from "../lib/trends";
import { inChunks, placeholders } from "../lib/sql";
import type { DeliveryRecord, DeliveryWithPayload, HandoffView, Provenance } from "./types";

/**
 * The ledger's read model: plain functions over a ledger's SqlStorage, the row types the admin
 * API and the dashboard see, and their limits. Nothing here writes.
 */

type Row = Record<string, SqlStorageValue>;

// The record's one definition is the zod schema in types.ts; re-exported for the read model's callers.
export type { DeliveryRecord, DeliveryWithPayload, HandoffView, Provenance } from "./types";

/** One target's hand-off of a delivery. */
/**
 * Filter of `listDeliveries` (newest first: received time, then seq). `before` continues a page:
 * rows received before `at`, or at `at` with a seq below `seq`.
 */
export interface ListFilter {
  /** Search: an exact delivery id, subject, upload id, tracking id or subject identifier. */
  q?: string;
  kind?: string;
  subject?: string;
  provenance?: Provenance;
  from?: number;
  to?: number;
  attention?: boolean;
  before?: { at: number; seq: number };
  limit: number;
}

/** Result of a finished integrity run over the hash chain (integrity.ts). Times are epoch ms. */
export interface IntegrityReport {
  ok: boolean;
  /** incremental: the records after the last checkpoint; full: the whole chain (from the pruned anchor, when retention removed records). */
  mode: "incremental" | "full";
  /** Records this run verified: fromSeq..verifiedThrough (none when fromSeq > verifiedThrough: nothing new). */
  checked: number;
  fromSeq: number;
  verifiedThrough: number;
  /** record_hash of record `verifiedThrough`: the head as verified. */
  headHash: string;
  firstBroken: { seq: number; deliveryId: string; reason: string } | null;
  /** Records of this run whose body retention pruned: their links verified, their bodies' digests not recomputed (nothing left to hash). */
  prunedBodies: number;
  startedAt: number;
  /** When the run finished. */
  checkedAt: number;
}

/** What a ledger knows about its integrity, without checking anything: the latest report and the run in progress. */
export interface IntegrityStatus {
  report: IntegrityReport | null;
  running: { mode: IntegrityReport["mode"]; through: number; upTo: number; startedAt: number; checked: number } | null;
  /** Every record through this seq has been verified (0: none yet). */
  verifiedThrough: number;
  /** The newest record's seq. */
  head: number;
}

/** Archive, retention and integrity of one ledger, from stored progress and counters (nothing is scanned). Times are epoch ms. */
export interface LedgerLifecycle {
  /** The newest record's seq. */
  head: number;
  archive: {
    /** Every record through this seq is in R2. */
    archivedThrough: number;
    /** Records not archived yet (the open tail, and closed segments waiting for the job). */
    lagRecords: number;
    segments: number;
    records: number;
    bytes: number;
    lastArchivedAt: number | null;
    /** When the job looks again, or null. */
    nextAt: number | null;
    /** Why archiving is halted (it waits for an operator), or null. */
    halted: string | null;
  };
  retention: {
    /** Bodies of every kept record through this seq are pruned. */
    bodiesPrunedThrough: number;
    /** Every record through this seq was removed (the archive keeps them). */
    recordsPrunedThrough: number;
    prunedBodies: number;
    prunedRecords: number;
    lastPrunedAt: number | null;
    nextAt: number | null;
    /** Why pruning stopped, or null. */
    error: string | null;
    /** Records passed over because a hand-off of theirs is pending (kept whole until handed): how many, and the first HELD_SHOWN seqs; null when none. */
    heldBack: { records: number; seqs: number[] } | null;
    /** `heldBack` as the sentence the lifecycle status shows ("held back: N records held at seq …"), or null. */
    heldBackNote: string | null;
  };
  integrity: IntegrityStatus;
}

/** Counts of one ledger, for the dashboard and metrics. */
export interface LedgerStats {
  deliveries: number;
  duplicates: number;
  attention: number;
  pendingHandoffs: number;
  handshakes: number;
  lastReceivedAt: number | null;
}

/** A handshake in the audit log. */
export interface HandshakeEntry {
  receivedAt: number;
  sourceIp: string | null;
  webhookId: string | null;
  deliveryId: string | null;
  authenticated: boolean;
  outcome: string;
}

/** Rows per list page at most. */
export const MAX_LIST = 500;

const RECORD_COLUMNS =
  "seq, delivery_id, id_derived, event, kind, subject, attention, received_at, source_ip, headers, body_sha256, COALESCE(body_bytes, length(body)) AS body_size, record_hash, duplicate_count, last_seen_at, provenance, same_body_as, body_pruned_at";

/** Deliveries matching a filter, newest first. */
export function listDeliveries(sql: SqlStorage, filter: ListFilter): DeliveryRecord[] {
  const where: string[] = [];
  const args: SqlStorageValue[] = [];
  if (filter.kind !== undefined) {
    if (filter.kind.endsWith(".*")) (where.push("kind LIKE ? ESCAPE '\\'"), args.push(filter.kind.slice(0, -1).replace(/[\\%_]/g, "\\$&") + "%"));
    else if (filter.kind !== "*") (where.push("kind = ?"), args.push(filter.kind));
  }
  // The subject is a search key, so its rows come from that index.
  if (filter.subject !== undefined)
    (where.push("seq IN (SELECT seq FROM search_keys WHERE value = ?) AND subject = ?"), args.push(filter.subject, filter.subject));
  if (filter.provenance !== undefined) (where.push("provenance = ?"), args.push(filter.provenance));
  if (filter.q !== undefined) {
    // Equality on the delivery id or on a search key stored at record time: no pattern, any length.
    where.push("(delivery_id = ? OR seq IN (SELECT seq FROM search_keys WHERE value = ?))");
    args.push(filter.q, filter.q);
  }
  if (filter.from !== undefined) (where.push("received_at >= ?"), args.push(filter.from));
  if (filter.to !== undefined) (where.push("received_at < ?"), args.push(filter.to));
  if (filter.attention) where.push("attention IS NOT NULL");
  if (filter.before !== undefined)
    (where.push("(received_at < ? OR (received_at = ? AND seq < ?))"), args.push(filter.before.at, filter.before.at, filter.before.seq));
  const query = `SELECT ${RECORD_COLUMNS} FROM deliveries ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY received_at DESC, seq DESC LIMIT ?`;
  return sql
    .exec(query, ...args, clampLimit(filter.limit))
    .toArray()
    .map(rowToDelivery);
}

/** One delivery with body, envelope and hand-offs; null when unknown. */
export function getDelivery(sql: SqlStorage, deliveryId: string): DeliveryWithPayload | null {
  const row = sql.exec(`SELECT ${RECORD_COLUMNS}, body, envelope FROM deliveries WHERE delivery_id = ?`, deliveryId).toArray()[0];
  if (!row) return null;
  const handoffs = sql
    .exec("SELECT target_id, planned_at, handed_at, tries, last_error FROM handoffs WHERE delivery_id = ? ORDER BY target_id", deliveryId)
    .toArray()
    .map(rowToHandoff);
  return { ...rowToDelivery(row), body: new Uint8Array(row.body as ArrayBuffer), envelope: row.envelope as string, handoffs };
}

/** Most ids `knownDeliveries` looks up in one call. */
export const MAX_KNOWN_LOOKUP = 500;

/** A delivery id the ledger knows: a record it holds (with its provenance), or the id of one retention removed. */
export interface KnownDelivery {
  deliveryId: string;
  /** How the record arrived; null for a removed one (only its id is kept). */
  provenance: Provenance | null;
  /** Retention removed the record (the archive keeps it); its id stays known PRUNED_ID_KEEP_MS after receipt (retention.ts). */
  pruned: boolean;
}

/** Which of `ids` the ledger holds or retention removed lately (at most MAX_KNOWN_LOOKUP ids; more is a bug). */
export function knownDeliveries(sql: SqlStorage, ids: readonly string[]): KnownDelivery[] {
  if (ids.length > MAX_KNOWN_LOOKUP) throw new Error(`knownDeliveries: at most ${MAX_KNOWN_LOOKUP} ids per call, got ${ids.length}`);
  if (ids.length === 0) return [];
  const held: KnownDelivery[] = inChunks(ids).flatMap((chunk) =>
    sql
      .exec<{ delivery_id: string; provenance: string }>(
        `SELECT delivery_id, provenance FROM deliveries WHERE delivery_id IN (${placeholders(chunk)})`,
        ...chunk,
      )
      .toArray()
      .map((r) => ({ deliveryId: r.delivery_id, provenance: r.provenance as Provenance, pruned: false })),
  );
  const found = new Set(held.map((k) => k.deliveryId));
  const removed: KnownDelivery[] = inChunks(ids.filter((id) => !found.has(id))).flatMap((chunk) =>
    sql
      .exec<{ delivery_id: string }>(`SELECT delivery_id FROM pruned_ids WHERE delivery_id IN (${placeholders(chunk)})`, ...chunk)
      .toArray()
      .map((r) => ({ deliveryId: r.delivery_id, provenance: null, pruned: true })),
  );
  return [...held, ...removed];
}

/**
 * Names of the ledger's counters (lib/counters.ts), maintained by the writes (ledger.ts, handoff.ts)
 * and read by stats() and metrics(), which never scan history. Counts of deliveries are since the
 * ledger began: pruning a record does not lower them.
 */
export const COUNTER = {
  /** Deliveries recorded with an attention note. */
  attention: "attention",
  /** Rows in the handshake log. */
  handshakesKept: "handshakes:kept",
  /** Handshake rows the log's bound removed. */
  handshakesDropped: "handshakes:dropped",
  /** Records whose body and envelope retention removed (digests kept). */
  prunedBodies: "pruned:bodies",
  /** Records retention removed from the ledger (they live on in the archive). */
  prunedRecords: "pruned:records",
} as const;
/** Deliveries of a kind recorded (prefix `accepted:`), copies of them received again (`duplicates:`), requests refused (`rejected:`). */
export const acceptedCounter = (kind: string) => `accepted:${kind}`;
export const duplicatesCounter = (kind: string) => `duplicates:${kind}`;
export const rejectedCounter = (reason: string) => `rejected:${reason}`;

/** Counts for the dashboard and metrics, from the counters (and the newest received time, from its index). */
export function ledgerStats(sql: SqlStorage): LedgerStats {
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const last = sql.exec<{ last: number | null }>("SELECT MAX(received_at) AS last FROM deliveries").one().last;
  return {
    deliveries: sum(readCounters(sql, "accepted:")),
    duplicates: sum(readCounters(sql, "duplicates:")),
    attention: readCounter(sql, COUNTER.attention),
    // Not a counter (a row written per hand-off): the pending rows, through handoffs_due (as many as wait).
    pendingHandoffs: sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM handoffs WHERE handed_at IS NULL").one().n,
    handshakes: readCounter(sql, COUNTER.handshakesKept),
    lastReceivedAt: last,
  };
}

/** Accepted and duplicate counts per kind, and rejections per reason, since the ledger began (from the counters). */
export function ledgerMetrics(sql: SqlStorage): { kinds: { kind: string; accepted: number; duplicates: number }[]; rejected: Record<string, number> } {
  const accepted = readCounters(sql, "accepted:");
  const duplicates = readCounters(sql, "duplicates:");
  const kinds = [...new Set([...accepted.keys(), ...duplicates.keys()])].sort();
  return {
    kinds: kinds.map((kind) => ({ kind, accepted: accepted.get(kind) ?? 0, duplicates: duplicates.get(kind) ?? 0 })),
    rejected: Object.fromEntries(readCounters(sql, "rejected:")),
  };
}

/** Recent handshakes, newest first, and how many older ones the log's bound has dropped. */
export function listHandshakes(sql: SqlStorage, limit: number): { items: (HandshakeEntry & { id: number })[]; dropped: number } {
  const items = sql
    .exec("SELECT * FROM handshakes ORDER BY id DESC LIMIT ?", clampLimit(limit))
    .toArray()
    .map((r) => ({
      id: r.id as number,
      receivedAt: r.received_at as number,
      sourceIp: r.source_ip as string | null,
      webhookId: r.webhook_id as string | null,
      deliveryId: r.delivery_id as string | null,
      authenticated: r.authenticated === 1,
      outcome: r.outcome as string,
    }));
  return { items, dropped: readCounter(sql, COUNTER.handshakesDropped) };
}

/** A value kept in the meta table (JSON text), or null. */
export function readMeta<T>(sql: SqlStorage, key: string): T | null {
  const value = sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
  return value === undefined ? null : (JSON.parse(value as string) as T);
}

/** Stores a value in the meta table as JSON text. */
export function writeMeta(sql: SqlStorage, key: string, value: unknown): void {
  sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, JSON.stringify(value));
}

/** The source id this ledger belongs to ("" before the first delivery). */
export function ledgerSource(sql: SqlStorage): string {
  return (sql.exec("SELECT value FROM meta WHERE key = 'source'").toArray()[0]?.value as string | undefined) ?? "";
}

function rowToDelivery(r: Row): DeliveryRecord {
  return {
    seq: r.seq as number,
    deliveryId: r.delivery_id as string,
    idDerived: r.id_derived === 1,
    event: r.event as string | null,
    kind: r.kind as string,
    subject: r.subject as string | null,
    attention: r.attention as string | null,
    receivedAt: r.received_at as number,
    sourceIp: r.source_ip as string | null,
    headers: JSON.parse(r.headers as string) as Record<string, string>,
    bodySha256: r.body_sha256 as string,
    bodySize: r.body_size as number,
    recordHash: r.record_hash as string,
    duplicateCount: r.duplicate_count as number,
    lastSeenAt: r.last_seen_at as number,
    provenance: r.provenance as Provenance,
    sameBodyAs: r.same_body_as as string | null,
    bodyPrunedAt: r.body_pruned_at as number | null,
  };
}

function rowToHandoff(h: Row): HandoffView {
  return {
    targetId: h.target_id as string,
    plannedAt: h.planned_at as number,
    handedAt: h.handed_at as number | null,
    tries: h.tries as number,
    lastError: h.last_error as string | null,
  };
}

function clampLimit(limit: number): number {
  return Math.max(1, Math.min(MAX_LIST, Math.floor(limit) || 50));
}

/** This source's hourly trend, the last `hours` hours: deliveries recorded, duplicates received, requests refused. */
export function ledgerTrend(sql: SqlStorage, hours: number, now: number): TrendPoint[] {
  return hourlyTrend(sql, hours, now, { deliveries: growth("accepted:"), duplicates: growth("duplicates:"), refusals: growth("rejected:") });
}
