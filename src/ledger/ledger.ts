import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env";
import { sha256Hex } from "../lib/crypto";
import { log } from "../lib/log";
import { migrate } from "../lib/migrate";
import type { OutboxItem } from "../outbox/types";
import { HEADER } from "../providers/centrepoint/constants";
import { LEDGER_MIGRATIONS } from "./schema";

/** What ingress hands to the ledger for one authenticated delivery. */
export interface RecordInput {
  source: string;
  deliveryId: string;
  idDerived: boolean;
  event: string | null;
  kind: string;
  subject: string | null;
  attention: string | null;
  receivedAt: number;
  sourceIp: string | null;
  /** Lower-case header names, credentials already redacted. */
  headers: Record<string, string>;
  body: Uint8Array;
  envelope: string;
  /** Ids of the targets that want this event, decided at acceptance. */
  targets: string[];
}

/** Outcome of `record`. */
export interface RecordResult {
  status: "accepted" | "duplicate";
  seq: number;
  duplicateCount: number;
}

/** A stored delivery as the admin API shows it. */
export interface DeliveryRecord {
  seq: number;
  deliveryId: string;
  idDerived: boolean;
  event: string | null;
  kind: string;
  subject: string | null;
  attention: string | null;
  receivedAt: number;
  sourceIp: string | null;
  headers: Record<string, string>;
  bodySha256: string;
  bodySize: number;
  recordHash: string;
  duplicateCount: number;
  lastSeenAt: number;
}

/** A delivery with its body, envelope and hand-off rows. */
export interface DeliveryDetail extends DeliveryRecord {
  body: Uint8Array;
  envelope: string;
  handoffs: { targetId: string; plannedAt: number; handedAt: number | null; tries: number; lastError: string | null }[];
}

/**
 * Filter of `list` (newest first: received time, then seq). `before` continues a page: rows
 * received before `at`, or at `at` with a seq below `seq`.
 */
export interface ListFilter {
  /** Search: an exact delivery id, subject, upload id, tracking id or subject identifier. */
  q?: string;
  kind?: string;
  subject?: string;
  from?: number;
  to?: number;
  attention?: boolean;
  before?: { at: number; seq: number };
  limit: number;
}

/** Result of an integrity check of the hash chain. */
export interface IntegrityReport {
  ok: boolean;
  checked: number;
  headHash: string;
  firstBroken: { seq: number; deliveryId: string; reason: string } | null;
  /** When the check ran, epoch ms. */
  checkedAt: number;
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
export interface HandshakeInput {
  receivedAt: number;
  sourceIp: string | null;
  webhookId: string | null;
  deliveryId: string | null;
  authenticated: boolean;
  outcome: string;
}

const GENESIS = "0".repeat(64);
/** Hand-off retry delays: 1 s doubling to 5 min. */
const HANDOFF_BASE_MS = 1_000;
const HANDOFF_MAX_MS = 300_000;
const HANDOFF_BATCH = 200;
const INTEGRITY_PAGE = 500;

type Row = Record<string, SqlStorageValue>;

/**
 * The ledger of one source (Durable Object named by source id). `record` stores a delivery,
 * its hash-chain link and its planned hand-offs in one transaction, and is idempotent on the
 * delivery id. The alarm pushes pending hand-offs to the targets' outboxes until each
 * acknowledges (at-least-once; the outbox is idempotent on (source, delivery id)).
 */
export class Ledger extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, LEDGER_MIGRATIONS));
  }

  /** Records a delivery (or counts a duplicate); durable when the promise resolves. */
  async record(input: RecordInput): Promise<RecordResult> {
    const result = this.ctx.storage.transactionSync((): RecordResult => {
      const existing = this.sql.exec("SELECT seq, duplicate_count FROM deliveries WHERE delivery_id = ?", input.deliveryId).toArray()[0];
      if (existing) {
        this.sql.exec("UPDATE deliveries SET duplicate_count = duplicate_count + 1, last_seen_at = ? WHERE seq = ?", input.receivedAt, existing.seq);
        return { status: "duplicate", seq: existing.seq as number, duplicateCount: (existing.duplicate_count as number) + 1 };
      }
      const head = this.sql.exec("SELECT seq, record_hash FROM deliveries ORDER BY seq DESC LIMIT 1").toArray()[0];
      const seq = head ? (head.seq as number) + 1 : 1;
      const prevHash = head ? (head.record_hash as string) : GENESIS;
      const headers = JSON.stringify(input.headers);
      const bodySha = sha256Hex(input.body);
      const recordHash = chainHash({
        prevHash,
        seq,
        deliveryId: input.deliveryId,
        event: input.event,
        kind: input.kind,
        receivedAt: input.receivedAt,
        headers,
        bodySha,
        envelope: input.envelope,
      });
      this.sql.exec(
        `INSERT INTO deliveries (seq, delivery_id, id_derived, event, kind, subject, attention, received_at, source_ip, headers, body, body_sha256, envelope, prev_hash, record_hash, last_seen_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        seq,
        input.deliveryId,
        input.idDerived ? 1 : 0,
        input.event,
        input.kind,
        input.subject,
        input.attention,
        input.receivedAt,
        input.sourceIp,
        headers,
        input.body,
        bodySha,
        input.envelope,
        prevHash,
        recordHash,
        input.receivedAt,
      );
      for (const target of new Set(input.targets)) {
        this.sql.exec(
          "INSERT INTO handoffs (delivery_id, target_id, planned_at, next_at) VALUES (?, ?, ?, ?)",
          input.deliveryId,
          target,
          input.receivedAt,
          input.receivedAt,
        );
      }
      this.sql.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('source', ?)", input.source);
      return { status: "accepted", seq, duplicateCount: 0 };
    });
    if (result.status === "accepted" && input.targets.length > 0) await this.armAlarm(input.receivedAt);
    return result;
  }

  /** Appends a validation handshake to the audit log (never a delivery, never handed off). */
  async recordHandshake(input: HandshakeInput): Promise<void> {
    this.sql.exec(
      "INSERT INTO handshakes (received_at, source_ip, webhook_id, delivery_id, authenticated, outcome) VALUES (?, ?, ?, ?, ?, ?)",
      input.receivedAt,
      input.sourceIp,
      input.webhookId,
      input.deliveryId,
      input.authenticated ? 1 : 0,
      input.outcome,
    );
  }

  /** Recent handshakes, newest first. */
  async listHandshakes(limit: number): Promise<(HandshakeInput & { id: number })[]> {
    return this.sql
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
  }

  /** Deliveries matching a filter, newest first. */
  async list(filter: ListFilter): Promise<DeliveryRecord[]> {
    const where: string[] = [];
    const args: SqlStorageValue[] = [];
    if (filter.kind !== undefined) {
      if (filter.kind.endsWith(".*")) (where.push("kind LIKE ? ESCAPE '\\'"), args.push(filter.kind.slice(0, -1).replace(/[\\%_]/g, "\\$&") + "%"));
      else if (filter.kind !== "*") (where.push("kind = ?"), args.push(filter.kind));
    }
    if (filter.subject !== undefined) (where.push("subject = ?"), args.push(filter.subject));
    if (filter.q !== undefined) {
      // Envelope data is compact JSON with ids as strings (docs/events.md), so a quoted match is exact.
      const quoted = JSON.stringify(filter.q).replace(/[\\%_]/g, "\\$&");
      where.push(`(delivery_id = ? OR subject = ? OR envelope LIKE ? ESCAPE '\\' OR envelope LIKE ? ESCAPE '\\' OR envelope LIKE ? ESCAPE '\\')`);
      args.push(filter.q, filter.q, `%"uploadId":${quoted}%`, `%"trackingId":${quoted}%`, `%"subjectIdentifier":${quoted}%`);
    }
    if (filter.from !== undefined) (where.push("received_at >= ?"), args.push(filter.from));
    if (filter.to !== undefined) (where.push("received_at < ?"), args.push(filter.to));
    if (filter.attention) where.push("attention IS NOT NULL");
    if (filter.before !== undefined)
      (where.push("(received_at < ? OR (received_at = ? AND seq < ?))"), args.push(filter.before.at, filter.before.at, filter.before.seq));
    const sql = `SELECT ${RECORD_COLUMNS} FROM deliveries ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY received_at DESC, seq DESC LIMIT ?`;
    return this.sql
      .exec(sql, ...args, clampLimit(filter.limit))
      .toArray()
      .map(rowToDelivery);
  }

  /** One delivery with body, envelope and hand-offs; null when unknown. */
  async get(deliveryId: string): Promise<DeliveryDetail | null> {
    const row = this.sql.exec(`SELECT ${RECORD_COLUMNS}, body, envelope FROM deliveries WHERE delivery_id = ?`, deliveryId).toArray()[0];
    if (!row) return null;
    const handoffs = this.sql
      .exec("SELECT * FROM handoffs WHERE delivery_id = ? ORDER BY target_id", deliveryId)
      .toArray()
      .map((h) => ({
        targetId: h.target_id as string,
        plannedAt: h.planned_at as number,
        handedAt: h.handed_at as number | null,
        tries: h.tries as number,
        lastError: h.last_error as string | null,
      }));
    return { ...rowToDelivery(row), body: new Uint8Array(row.body as ArrayBuffer), envelope: row.envelope as string, handoffs };
  }

  /** Recomputes every body hash and chain link; names the first broken record; keeps the report. */
  async verifyIntegrity(): Promise<IntegrityReport> {
    const report = { ...this.checkChain(), checkedAt: Date.now() };
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('integrity', ?)", JSON.stringify(report));
    return report;
  }

  /**
   * The latest full check when it ran less than `maxAgeMs` ago, else a new full check. Lets the
   * dashboard show integrity on every page load at the cost of at most one check per interval.
   */
  async recentIntegrity(maxAgeMs: number): Promise<IntegrityReport> {
    const stored = this.sql.exec("SELECT value FROM meta WHERE key = 'integrity'").toArray()[0]?.value;
    const last = stored ? (JSON.parse(stored as string) as IntegrityReport) : null;
    return last && Date.now() - last.checkedAt < maxAgeMs ? last : this.verifyIntegrity();
  }

  private checkChain(): Omit<IntegrityReport, "checkedAt"> {
    let prevHash = GENESIS;
    let expectedSeq = 1;
    let checked = 0;
    for (let page = 0; page < 1_000_000; page++) {
      const rows = this.sql.exec("SELECT * FROM deliveries WHERE seq >= ? ORDER BY seq LIMIT ?", expectedSeq, INTEGRITY_PAGE).toArray();
      if (rows.length === 0) break;
      for (const r of rows) {
        const seq = r.seq as number;
        const deliveryId = r.delivery_id as string;
        const broken = (reason: string) => ({ ok: false, checked, headHash: prevHash, firstBroken: { seq, deliveryId, reason } });
        if (seq !== expectedSeq) return broken(`record ${expectedSeq} is missing`);
        if (r.prev_hash !== prevHash) return broken("prev_hash does not match the previous record");
        const bodySha = sha256Hex(new Uint8Array(r.body as ArrayBuffer));
        if (bodySha !== r.body_sha256) return broken("body does not match its SHA-256");
        const expected = chainHash({
          prevHash,
          seq,
          deliveryId,
          event: r.event as string | null,
          kind: r.kind as string,
          receivedAt: r.received_at as number,
          headers: r.headers as string,
          bodySha,
          envelope: r.envelope as string,
        });
        if (expected !== r.record_hash) return broken("record_hash does not match the record's contents");
        prevHash = expected;
        expectedSeq++;
        checked++;
      }
    }
    return { ok: true, checked, headHash: prevHash, firstBroken: null };
  }

  /** Counts a request refused before it could be recorded (metrics); `reason` is a short code. */
  async countRejection(reason: string): Promise<void> {
    this.sql.exec("INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1", `rejected:${reason}`);
  }

  /** Accepted and duplicate counts per kind, and rejections per reason, since the ledger began. */
  async metrics(): Promise<{ kinds: { kind: string; accepted: number; duplicates: number }[]; rejected: Record<string, number> }> {
    const kinds = this.sql.exec("SELECT kind, COUNT(*) AS n, COALESCE(SUM(duplicate_count), 0) AS d FROM deliveries GROUP BY kind ORDER BY kind").toArray();
    const rejected = this.sql.exec("SELECT name, value FROM counters WHERE name LIKE 'rejected:%'").toArray();
    return {
      kinds: kinds.map((r) => ({ kind: r.kind as string, accepted: r.n as number, duplicates: r.d as number })),
      rejected: Object.fromEntries(rejected.map((r) => [(r.name as string).slice("rejected:".length), r.value as number])),
    };
  }

  /** Counts for the dashboard and metrics. */
  async stats(): Promise<LedgerStats> {
    const d = this.sql
      .exec(
        "SELECT COUNT(*) AS n, COALESCE(SUM(duplicate_count), 0) AS dups, COALESCE(SUM(attention IS NOT NULL), 0) AS att, MAX(received_at) AS last FROM deliveries",
      )
      .one();
    const h = this.sql.exec("SELECT COUNT(*) AS n FROM handoffs WHERE handed_at IS NULL").one();
    const s = this.sql.exec("SELECT COUNT(*) AS n FROM handshakes").one();
    return {
      deliveries: d.n as number,
      duplicates: d.dups as number,
      attention: d.att as number,
      pendingHandoffs: h.n as number,
      handshakes: s.n as number,
      lastReceivedAt: (d.last as number | null) ?? null,
    };
  }

  /** Pushes due hand-offs to their targets' outboxes; re-arms for the rest. Safe to run twice. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const due = this.sql
      .exec(
        `SELECT h.delivery_id, h.target_id, h.tries, d.kind, d.subject, d.received_at, d.headers, d.body, d.envelope
         FROM handoffs h JOIN deliveries d ON d.delivery_id = h.delivery_id
         WHERE h.handed_at IS NULL AND h.next_at <= ? ORDER BY h.next_at LIMIT ?`,
        now,
        HANDOFF_BATCH,
      )
      .toArray();
    const source = this.source();
    const byTarget = new Map<string, Row[]>();
    for (const row of due) byTarget.set(row.target_id as string, [...(byTarget.get(row.target_id as string) ?? []), row]);
    await Promise.all(
      [...byTarget].map(async ([targetId, rows]) => {
        const items: OutboxItem[] = rows.map((r) => ({
          source,
          deliveryId: r.delivery_id as string,
          kind: r.kind as string,
          subject: r.subject as string | null,
          receivedAt: r.received_at as number,
          envelope: r.envelope as string,
          body: new Uint8Array(r.body as ArrayBuffer),
          headers: forwardableHeaders(JSON.parse(r.headers as string) as Record<string, string>),
        }));
        try {
          await this.env.OUTBOX.get(this.env.OUTBOX.idFromName(targetId)).enqueue(targetId, items);
          const at = Date.now();
          for (const r of rows)
            this.sql.exec(
              "UPDATE handoffs SET handed_at = ?, tries = tries + 1, last_error = NULL WHERE delivery_id = ? AND target_id = ?",
              at,
              r.delivery_id,
              targetId,
            );
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          log("warn", "handoff failed", { source, target: targetId, count: rows.length, error: message });
          for (const r of rows) {
            const tries = (r.tries as number) + 1;
            const delay = Math.min(HANDOFF_MAX_MS, HANDOFF_BASE_MS * 2 ** Math.min(tries, 20));
            this.sql.exec(
              "UPDATE handoffs SET tries = ?, next_at = ?, last_error = ? WHERE delivery_id = ? AND target_id = ?",
              tries,
              Date.now() + delay,
              message.slice(0, 500),
              r.delivery_id,
              targetId,
            );
          }
        }
      }),
    );
    const next = this.sql.exec("SELECT MIN(next_at) AS at FROM handoffs WHERE handed_at IS NULL").one().at as number | null;
    if (next !== null) await this.ctx.storage.setAlarm(Math.max(next, Date.now()));
  }

  private async armAlarm(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  private source(): string {
    return (this.sql.exec("SELECT value FROM meta WHERE key = 'source'").toArray()[0]?.value as string | undefined) ?? "";
  }
}

const RECORD_COLUMNS =
  "seq, delivery_id, id_derived, event, kind, subject, attention, received_at, source_ip, headers, body_sha256, length(body) AS body_size, record_hash, duplicate_count, last_seen_at";

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
  };
}

/** The chain link: SHA-256 over the previous link and every immutable field of the record. */
function chainHash(f: {
  prevHash: string;
  seq: number;
  deliveryId: string;
  event: string | null;
  kind: string;
  receivedAt: number;
  headers: string;
  bodySha: string;
  envelope: string;
}): string {
  return sha256Hex(JSON.stringify([f.prevHash, f.seq, f.deliveryId, f.event, f.kind, f.receivedAt, f.headers, f.bodySha, sha256Hex(f.envelope)]));
}

/** The CentrePoint headers a raw-format target receives: `x-actigraph-*` as recorded. */
function forwardableHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith("x-actigraph-") && name !== HEADER.hookSecret));
}

function clampLimit(limit: number): number {
  return Math.max(1, Math.min(500, Math.floor(limit) || 50));
}
