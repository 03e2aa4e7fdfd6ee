import { DurableObject } from "cloudflare:workers";
import { loadConfig } from "../config/store";
import { auditSystemAfter } from "../audit/audit";
import type { Bindings } from "../env";
import { takeByBytes } from "../lib/batch";
import { bumpCounter, bumpCounters, readCounter } from "../lib/counters";
import { fromBase64, sha256Hex } from "../lib/crypto";
import { clipHeaderValue } from "../lib/headers";
import { log } from "../lib/log";
import { meterSql, type Usage } from "../lib/meter";
import { migrate } from "../lib/migrate";
import { DAY_MS } from "../lib/time";
import type { OutboxItem } from "../outbox/types";
import { PULL_HANDOFF } from "../pull/plan";
import type { StoredEnrichment } from "../pull/facts";
import { ARCHIVE_INITIAL, type ArchiveState, archiveSlice, nextHour, readArchived, rowToArchiveRecord, SEGMENT_LIMITS, type SegmentLimits } from "./archive";
import { recordLine } from "./archive-format";
import { CURRENT_CHAIN_VERSION, type ChainFields, GENESIS, linkHash } from "./chain";
import {
  decorateItem,
  type DownloadEntry,
  type DownloadRow,
  type EnrichingHandoff,
  type EnrichmentRecord,
  enrichingHandoffs,
  listDownloads,
  planReleased,
  type PullLedgerStats,
  pullLedgerStats,
  readEnrichment,
  recordDownload,
  releaseEnrichment,
  storeEnrichment,
} from "./enrichment";
import { buildItems, type DueHandoff, dueHandoffs, markFailed, markHanded, nextHandoffAt, outboxItem, planHandoffs } from "./handoff";
import {
  advanceRun,
  type ChainPoint,
  INTEGRITY_SLICE,
  isPruned,
  nextFrom,
  type SliceLimits,
  startRun,
  VERIFY_INITIAL,
  type VerifyState,
  verifySlice,
} from "./integrity";
import { dueJobs, type JobKind, nextJobAt, readJob, scheduleJob, writeJob } from "./jobs";
import {
  acceptedCounter,
  COUNTER,
  type DeliveryRecord,
  type DeliveryWithPayload,
  duplicatesCounter,
  getDelivery,
  knownDeliveries,
  type KnownDelivery,
  type HandshakeEntry,
  type IntegrityReport,
  type IntegrityStatus,
  type LedgerLifecycle,
  ledgerMetrics,
  ledgerSource,
  ledgerStats,
  type LedgerStats,
  listDeliveries,
  type ListFilter,
  listHandshakes,
  type Provenance,
  readMeta,
  rejectedCounter,
  writeMeta,
} from "./queries";
import { JOB_PACE_MS } from "./pacing";
import { heldBackStatus, PRUNE_INITIAL, pruneSlice } from "./retention";
import { LEDGER_MIGRATIONS } from "./schema";
import type { RecordInput, RecordResult } from "./types";

export type { DeliveryRecord, HandshakeEntry, IntegrityReport, IntegrityStatus, KnownDelivery, LedgerLifecycle, LedgerStats, ListFilter, Provenance };
/** A delivery with its body, envelope and hand-offs (the ledger's view). */
export type DeliveryDetail = DeliveryWithPayload;

/** Outcome of `resend`: per target whether the dispatch went back to its outbox, and where its payload came from; or why it cannot be sent again. */
export type ResendResult =
  | { ok: true; payloadFrom: "ledger" | "archive"; targets: { target: string; replayed: boolean }[] }
  | { ok: false; error: "not_found" | "archive_missing"; message: string };

/** How far back a body is compared with earlier deliveries' (7 days: CentrePoint retries for 48 h, and a resend from the portal may come later). */
export const SAME_BODY_HORIZON_MS = 7 * 86_400_000;
/** Newest handshake rows kept (older ones are dropped and counted). */
export const HANDSHAKE_LOG_CAP = 10_000;
/** Wait before the alarm runs again after an unexpected error. */
const ERROR_RETRY_MS = 30_000;
/** When a record starts a push at once, the alarm is armed this much later, as the at-least-once fallback. */
const FALLBACK_ALARM_MS = 5_000;
/** Rounds of pushes the alarm waits for at most (each target's next push starts when its last one ends). */
const PUSH_ROUNDS = 100;
/** Wait before a job whose slice failed runs again. */
const JOB_RETRY_MS = 5 * 60_000;
/** What one page of an export carries at most (rows, and bytes of stored payload). */
const EXPORT_PAGE = { rows: 500, bytes: 1024 * 1024 };

/**
 * The ledger of one source (Durable Object named by source id). `record` stores a delivery, its
 * hash-chain link and its planned hand-offs in one transaction, and is idempotent on the
 * delivery id. The alarm pushes pending hand-offs to the targets' outboxes until each
 * acknowledges (at-least-once; the outbox is idempotent on (source, delivery id)). Every path
 * that leaves a hand-off pending makes sure the alarm is armed.
 */
export class Ledger extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  /** Billing units of this instance (lib/meter.ts). */
  private readonly meter: ReturnType<typeof meterSql>;
  /** Newest handshake rows kept; a field so tests can show the trimming with a smaller log. */
  protected handshakeCap = HANDSHAKE_LOG_CAP;
  /** What one slice of the integrity check reads at most; a field so tests can make slices small. */
  protected integritySlice: SliceLimits = INTEGRITY_SLICE;
  /** Pause after an alarm run that did background work, ms (the next slice waits at least this long). */
  protected jobPaceMs = JOB_PACE_MS;
  /** Bounds of an archive segment; a field so tests can make segments small. */
  protected segmentLimits: SegmentLimits = SEGMENT_LIMITS;
  /** Bounds of an export page; a field so tests can show an export of many pages. */
  protected exportPageLimits = EXPORT_PAGE;
  /** Whether this instance knows the archive job to be scheduled (null: not known yet), so a record schedules it at most once. */
  private archiveScheduled: boolean | null = null;
  /** Where a target's items are pushed: its outbox. A seam, so tests can make a push fail without touching `env`. */
  protected outboxFor = (targetId: string, source = ""): { enqueue(targetId: string, items: OutboxItem[]): Promise<unknown> } =>
    targetId === PULL_HANDOFF ? this.env.PULLER.get(this.env.PULLER.idFromName(source)) : this.env.OUTBOX.get(this.env.OUTBOX.idFromName(targetId));
  /** The chain's head as last committed by this instance (read from SQLite once): saves a query per record. */
  private head: { seq: number; hash: string } | null = null;
  /** Whether this instance has seen the ledger's source id stored. */
  private sourceStored = false;
  /** Pushes in flight, one per target at most (so a target's items go in order); other targets' rows do not wait for them. */
  private readonly pushes = new Map<string, Promise<void>>();

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.meter = meterSql(ctx.storage.sql);
    this.sql = this.meter.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, LEDGER_MIGRATIONS));
  }

  /** Records a delivery (or counts a duplicate); durable when the promise resolves. */
  async record(input: RecordInput): Promise<RecordResult> {
    this.meter.usage.requests++;
    const result = this.ctx.storage.transactionSync((): RecordResult & { hash?: string } => {
      // A record kept, or one retention removed lately (its id is kept: a resend stays a duplicate). One statement, two index probes.
      const existing = this.sql
        .exec<{ seq: number; duplicate_count: number; kind: string; removed: number }>(
          `SELECT seq, duplicate_count, kind, 0 AS removed FROM deliveries WHERE delivery_id = ?
           UNION ALL SELECT seq, duplicate_count, kind, 1 AS removed FROM pruned_ids WHERE delivery_id = ?`,
          input.deliveryId,
          input.deliveryId,
        )
        .toArray()[0];
      if (existing) {
        if (existing.removed) this.sql.exec("UPDATE pruned_ids SET duplicate_count = duplicate_count + 1 WHERE delivery_id = ?", input.deliveryId);
        else this.sql.exec("UPDATE deliveries SET duplicate_count = duplicate_count + 1, last_seen_at = ? WHERE seq = ?", input.receivedAt, existing.seq);
        bumpCounter(this.sql, duplicatesCounter(existing.kind));
        return { status: "duplicate", seq: existing.seq, duplicateCount: existing.duplicate_count + 1 };
      }
      const head = this.chainHead();
      const seq = head ? head.seq + 1 : 1;
      const bodySha256 = sha256Hex(input.body);
      const sameBodyAs = this.earlierWithSameBody(bodySha256, input.receivedAt);
      let attention = input.attention;
      let envelope = input.envelope;
      if (sameBodyAs !== null) {
        const note = `same body as delivery ${sameBodyAs} under a new id: a resend with a new id, or a captured request posted again`;
        attention = attention === null ? note : `${attention}; ${note}`;
        envelope = withExtension(envelope, "samebodyas", sameBodyAs);
      }
      const headers = JSON.stringify(input.headers);
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
        headers,
        bodySha256,
        envelopeSha256: sha256Hex(envelope),
        provenance: input.provenance ?? "webhook",
        sameBodyAs,
      };
      const recordHash = linkHash(CURRENT_CHAIN_VERSION, fields);
      this.sql.exec(
        `INSERT INTO deliveries (seq, delivery_id, id_derived, event, kind, subject, attention, received_at, source_ip, headers, body, body_sha256,
           envelope, envelope_sha256, prev_hash, record_hash, last_seen_at, chain_version, provenance, same_body_as)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        seq,
        input.deliveryId,
        input.idDerived ? 1 : 0,
        input.event,
        input.kind,
        input.subject,
        attention,
        input.receivedAt,
        input.sourceIp,
        headers,
        input.body,
        bodySha256,
        envelope,
        fields.envelopeSha256,
        fields.prevHash,
        recordHash,
        input.receivedAt,
        CURRENT_CHAIN_VERSION,
        fields.provenance,
        sameBodyAs,
      );
      for (const key of new Set(input.searchKeys ?? [])) this.sql.exec("INSERT OR IGNORE INTO search_keys (value, seq) VALUES (?, ?)", key, seq);
      const planned = planHandoffs(this.sql, input.deliveryId, input.receivedAt, input.targets, input.unfilteredTargets ?? [], input.handoffPlans);
      bumpCounters(this.sql, { [acceptedCounter(input.kind)]: 1, [COUNTER.attention]: attention === null ? 0 : 1, [COUNTER.pendingHandoffs]: planned });
      if (!this.sourceStored) this.sql.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('source', ?)", input.source);
      // A record waits for its archive segment: the archive job looks again within the hour (once per idle spell).
      if (this.archiveScheduled !== true) scheduleJob(this.sql, "archive", nextHour(input.receivedAt));
      return { status: "accepted", seq, duplicateCount: 0, hash: recordHash };
    });
    if (result.status === "accepted") {
      // Committed: only now does this instance's view of the head move on.
      this.head = { seq: result.seq, hash: result.hash! };
      this.sourceStored = true;
      this.archiveScheduled = true;
    }
    if (result.status === "accepted" && input.targets.length + (input.unfilteredTargets?.length ?? 0) > 0) {
      // Hand over at once, off the response path; the alarm stays armed as the at-least-once fallback.
      await this.ensureAlarm(input.receivedAt + FALLBACK_ALARM_MS);
      this.pushSoon([...input.targets, ...(input.unfilteredTargets ?? [])]);
    } else {
      // A duplicate too: CentrePoint's resend is a chance to restart a hand-off whose alarm was lost.
      await this.ensureAlarm();
    }
    return { status: result.status, seq: result.seq, duplicateCount: result.duplicateCount };
  }

  /** The last record's seq and hash (null for an empty ledger), from memory once read. */
  private chainHead(): { seq: number; hash: string } | null {
    if (this.head === null) {
      const row = this.sql.exec<{ seq: number; record_hash: string }>("SELECT seq, record_hash FROM deliveries ORDER BY seq DESC LIMIT 1").toArray()[0];
      if (row) this.head = { seq: row.seq, hash: row.record_hash };
    }
    return this.head;
  }

  /** Appends a validation handshake to the audit log (never a delivery, never handed off); keeps the newest `handshakeCap` rows. */
  async recordHandshake(input: HandshakeEntry): Promise<void> {
    this.meter.usage.requests++;
    this.ctx.storage.transactionSync(() => {
      const id = this.sql
        .exec<{ id: number }>(
          "INSERT INTO handshakes (received_at, source_ip, webhook_id, delivery_id, authenticated, outcome) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
          input.receivedAt,
          input.sourceIp === null ? null : clipHeaderValue(input.sourceIp),
          input.webhookId === null ? null : clipHeaderValue(input.webhookId),
          input.deliveryId === null ? null : clipHeaderValue(input.deliveryId),
          input.authenticated ? 1 : 0,
          clipHeaderValue(input.outcome),
        )
        .one().id;
      // Ids only grow, so in steady state this removes the one oldest row: O(1) per stranger's request.
      const removed = this.sql.exec("DELETE FROM handshakes WHERE id <= ? RETURNING id", id - this.handshakeCap).toArray().length;
      bumpCounters(this.sql, { [COUNTER.handshakesKept]: 1 - removed, [COUNTER.handshakesDropped]: removed });
    });
  }

  /** Recent handshakes, newest first, and how many the log's bound has dropped. */
  async listHandshakes(limit: number): Promise<{ items: (HandshakeEntry & { id: number })[]; dropped: number }> {
    return listHandshakes(this.sql, limit);
  }

  /** Deliveries matching a filter, newest first. */
  async list(filter: ListFilter): Promise<DeliveryRecord[]> {
    return listDeliveries(this.sql, filter);
  }

  /** Which of `ids` (at most 500) this ledger holds, with their provenance, or removed lately (retention): reconciliation's lookup (src/reconcile/). */
  async knownDeliveries(ids: string[]): Promise<KnownDelivery[]> {
    return knownDeliveries(this.sql, ids);
  }

  /** One delivery with body, envelope and hand-offs; null when unknown. */
  async get(deliveryId: string): Promise<DeliveryDetail | null> {
    return getDelivery(this.sql, deliveryId);
  }

  /**
   * The records an export of received times [from, to) covers, as a contiguous seq range: from the
   * first record received at or after `from` to the last received before `to` (either bound
   * optional); null when none. Contiguous, so the export's chain can be checked on its own: never
   * before the chain's anchor (records retention removed, and any kept below it, are the
   * archive's). `prunedThrough`: the anchor's seq (0 when nothing was removed), so a caller can
   * say that a range asked from earlier starts later.
   */
  async exportRange(from?: number, to?: number): Promise<{ firstSeq: number; lastSeq: number; prunedThrough: number } | null> {
    const anchor = this.chainAnchor().seq;
    const first =
      from === undefined
        ? this.sql.exec<{ seq: number | null }>("SELECT MIN(seq) AS seq FROM deliveries WHERE seq > ?", anchor).one().seq
        : (this.sql
            .exec<{ seq: number }>("SELECT seq FROM deliveries WHERE received_at >= ? AND seq > ? ORDER BY received_at, seq LIMIT 1", from, anchor)
            .toArray()[0]?.seq ?? null);
    const last =
      to === undefined
        ? this.sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM deliveries").one().seq
        : (this.sql
            .exec<{ seq: number }>("SELECT seq FROM deliveries WHERE received_at < ? AND seq > ? ORDER BY received_at DESC, seq DESC LIMIT 1", to, anchor)
            .toArray()[0]?.seq ?? null);
    return first === null || last === null || first > last ? null : { firstSeq: first, lastSeq: last, prunedThrough: anchor };
  }

  /** NDJSON of records `firstSeq`.. (at most `lastSeq`), one page bounded by rows and bytes; `next` continues, null at the end. */
  async exportPage(firstSeq: number, lastSeq: number): Promise<{ text: string; next: number | null }> {
    const sizes = this.sql
      .exec<{ seq: number; size: number }>(
        "SELECT seq, length(body) + length(envelope) + length(headers) AS size FROM deliveries WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
        firstSeq,
        lastSeq,
        this.exportPageLimits.rows,
      )
      .toArray();
    if (sizes.length === 0) return { text: "", next: null };
    const last = takeByBytes(sizes, (r) => r.size, this.exportPageLimits.bytes).at(-1)!.seq;
    let text = "";
    for (const r of this.sql.exec("SELECT * FROM deliveries WHERE seq >= ? AND seq <= ? ORDER BY seq", firstSeq, last))
      text += recordLine(rowToArchiveRecord(r));
    return { text, next: last < lastSeq ? last + 1 : null };
  }

  /**
   * Hands a delivery to these targets' outboxes again, as a new dispatch (for targets whose outbox
   * pruned it after delivery). The payload is the ledger's own, or, once retention pruned it, the
   * archived record's, checked against the ledger's digests; a clear error when neither has it.
   */
  async resend(deliveryId: string, targets: string[]): Promise<ResendResult> {
    const row = this.sql.exec("SELECT * FROM deliveries WHERE delivery_id = ?", deliveryId).toArray()[0];
    if (!row)
      return { ok: false, error: "not_found", message: `Delivery ${deliveryId} is not in the ledger (retention may have removed it; the archive keeps it).` };
    let payload: { body: Uint8Array; envelope: string } = { body: new Uint8Array(row.body as ArrayBuffer), envelope: row.envelope as string };
    const pruned = isPruned(row);
    if (pruned) {
      const archived = await readArchived(this.sql, this.env.ARCHIVE, row);
      if (!archived.ok) {
        const when = new Date(row.body_pruned_at as number).toISOString();
        return {
          ok: false,
          error: "archive_missing",
          message: `The body of delivery ${deliveryId} was pruned on ${when} and cannot be read back from the archive: ${archived.error}.`,
        };
      }
      payload = { body: fromBase64(archived.record.body!)!, envelope: archived.record.envelope! };
    }
    const item = outboxItem(ledgerSource(this.sql), row, payload);
    // A target that enriches this delivery gets it enriched again, from the stored enrichment, as its hand-off did.
    const plans = new Map(
      this.sql
        .exec<{ target_id: string; enrich: string }>("SELECT target_id, enrich FROM handoffs WHERE delivery_id = ? AND enrich IS NOT NULL", deliveryId)
        .toArray()
        .map((h) => [h.target_id, h.enrich]),
    );
    const decorate = plans.size > 0 ? this.decorate() : null;
    const itemFor = (target: string): OutboxItem => {
      const enrich = plans.get(target);
      if (enrich === undefined || decorate === null) return item;
      return decorate(item, { seq: row.seq as number, deliveryId, targetId: target, tries: 0, unfiltered: false, enrich, size: 0 });
    };
    const results = await Promise.all(
      targets.map(async (target) => ({
        target,
        replayed: ((await this.outboxFor(target).enqueue(target, [itemFor(target)])) as { inserted: number }).inserted > 0,
      })),
    );
    return { ok: true, payloadFrom: pruned ? "archive" : "ledger", targets: results };
  }

  /** The latest integrity report and the run in progress; checks nothing (the overview and metrics read this). */
  async integrity(): Promise<IntegrityStatus> {
    return this.integrityStatus(readJob(this.sql, "verify", VERIFY_INITIAL).state);
  }

  /**
   * Starts an incremental integrity run (from the checkpoint through the newest record), or a full
   * one (`full`, or `fullIfOlderThanMs` since the last full run finished), unless one is running:
   * a full request turns a running incremental run into a full one. Verifies one slice now and
   * leaves the rest to the alarm, so it never blocks the ledger for long; the answer says how far
   * it got. A finished run's report is kept and logged (an `error` line when the chain is broken).
   */
  async checkIntegrity(options: { full?: boolean; fullIfOlderThanMs?: number } = {}): Promise<IntegrityStatus> {
    const now = Date.now();
    const last = readJob(this.sql, "verify", VERIFY_INITIAL).state.lastFullAt;
    const full = options.full === true || (options.fullIfOlderThanMs !== undefined && (last === null || now - last >= options.fullIfOlderThanMs));
    const state = this.verifyStep(now, full ? "full" : "incremental");
    await this.ensureAlarm();
    return this.integrityStatus(state);
  }

  /** Counts a request refused before it could be recorded (metrics); `reason` is a short code from a fixed set. */
  async countRejection(reason: string): Promise<void> {
    this.meter.usage.requests++;
    bumpCounter(this.sql, rejectedCounter(reason));
  }

  /** Accepted and duplicate counts per kind, rejections per reason, archive, retention and integrity, and this instance's billing units (hot path: record, hand-off, handshakes, rejections). */
  async metrics(): Promise<ReturnType<typeof ledgerMetrics> & { lifecycle: LedgerLifecycle; usage: Usage }> {
    const m = { ...ledgerMetrics(this.sql), lifecycle: this.lifecycleStatus() };
    this.meter.settle();
    return { ...m, usage: { ...this.meter.usage } };
  }

  /** Archive, retention and integrity progress, from the jobs' stored state and the counters. */
  async lifecycle(): Promise<LedgerLifecycle> {
    return this.lifecycleStatus();
  }

  /** Counts for the dashboard and metrics. */
  async stats(): Promise<LedgerStats> {
    return ledgerStats(this.sql);
  }

  /**
   * Pushes due hand-offs to their targets' outboxes, then runs one slice of each due background
   * job (jobs.ts), and re-arms for the rest. Never throws (the
   * platform retries a throwing alarm only a few times, then never again): an unexpected error is
   * logged and the alarm re-armed ERROR_RETRY_MS later. Safe to run twice.
   */
  override async alarm(): Promise<void> {
    this.meter.usage.requests++;
    try {
      // Pushes in flight end first (their rows are not due twice); then the alarm hands over the rest.
      await this.settlePushes();
      this.startPushes(Date.now());
      await this.settlePushes();
      await this.runDueJobs(Date.now());
      await this.ensureAlarm();
    } catch (e) {
      log("error", "ledger alarm failed; retrying later", { source: ledgerSource(this.sql), error: e instanceof Error ? e.message : String(e) });
      try {
        await this.ctx.storage.setAlarm(Date.now() + ERROR_RETRY_MS);
      } catch (again) {
        log("error", "ledger could not re-arm its alarm", { source: ledgerSource(this.sql), error: String(again) });
      }
    }
  }

  /**
   * Pushes due hand-offs in the background, off the response path. Every target has its own lane:
   * one push in flight per target, and a push that is slow or never answered delays only its own
   * target's rows, which go in the target's next push, started as soon as this one ends. Failures
   * are retried with backoff by the alarm. `targets`: the only targets with new rows; when a push to
   * each of them is in flight already, those pushes' successors take the rows (no query now).
   */
  private pushSoon(targets?: readonly string[]): void {
    if (targets?.every((t) => this.pushes.has(t))) return;
    try {
      this.startPushes(Date.now());
    } catch (e) {
      log("error", "ledger push failed; the alarm retries", { source: ledgerSource(this.sql), error: e instanceof Error ? e.message : String(e) });
    }
  }

  /** Starts one push for every target with due rows and no push in flight; returns the started pushes. */
  private startPushes(now: number): Promise<void>[] {
    const due = dueHandoffs(this.sql, now, [...this.pushes.keys()]);
    if (due.length === 0) return [];
    const source = ledgerSource(this.sql);
    let groups: ReturnType<typeof buildItems>;
    try {
      groups = buildItems(this.sql, source, due, this.decorate());
    } catch (e) {
      // A row that cannot be read: retry later with backoff, visible on the delivery's hand-offs.
      markFailed(this.sql, due, `could not read the delivery: ${e instanceof Error ? e.message : String(e)}`, now, Math.random);
      log("warn", "handoff failed", { source, count: due.length, error: e instanceof Error ? e.message : String(e) });
      return [];
    }
    return [...groups].map(([targetId, { rows, items }]) => {
      const push = this.pushTo(source, targetId, rows, items).finally(() => {
        this.pushes.delete(targetId);
        // Rows recorded meanwhile: this target's waited for this push; the alarm covers the rest.
        this.pushSoon();
        if (this.pushes.size === 0) this.ensureAlarm().catch((e: unknown) => log("error", "ledger could not re-arm its alarm", { source, error: String(e) }));
      });
      this.pushes.set(targetId, push);
      this.ctx.waitUntil(push);
      return push;
    });
  }

  /** Waits until no push is in flight, those started meanwhile included (at most PUSH_ROUNDS rounds). */
  private async settlePushes(): Promise<void> {
    for (let i = 0; i < PUSH_ROUNDS && this.pushes.size > 0; i++) await Promise.allSettled([...this.pushes.values()]);
  }

  /** Hands one target its rows' items; marks them handed, or failed with backoff. Never throws. */
  private async pushTo(source: string, targetId: string, rows: DueHandoff[], items: OutboxItem[]): Promise<void> {
    try {
      await this.outboxFor(targetId, source).enqueue(targetId, items);
      markHanded(this.sql, rows, Date.now());
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log("warn", "handoff failed", { source, target: targetId, count: rows.length, error: message });
      markFailed(this.sql, rows, message, Date.now(), Math.random);
    }
  }

  /** How hand-off rows with a pull plan become items: a target's enriched envelope (links made now), or the Puller's job. */
  private decorate() {
    return decorateItem(this.sql, { now: Date.now(), publicUrl: this.env.RELAY_PUBLIC_URL ?? "", linkKey: this.env.FILE_LINK_SECRET || null });
  }

  // ---- the pull side (docs/pull.md): enrichment beside the record, file-link downloads ----

  /** Stores the enrichment the Puller looked up (the latest attempt's) and hands off every waiting target it completes. Idempotent. */
  async storeEnrichment(deliveryId: string, stored: StoredEnrichment): Promise<{ ready: number }> {
    const ready = this.ctx.storage.transactionSync(() => storeEnrichment(this.sql, deliveryId, stored, Date.now()));
    if (ready > 0) this.pushSoon();
    return { ready };
  }

  /** Hands off now every hand-off of a delivery that waits for its enrichment, with whatever was found (the operator's "release"). */
  async releaseEnrichment(deliveryId: string): Promise<{ released: number }> {
    const released = this.ctx.storage.transactionSync(() => releaseEnrichment(this.sql, deliveryId, Date.now()));
    if (released > 0) this.pushSoon();
    return { released };
  }

  /**
   * Plans the enrichment of events that arrived while `targetId`'s document was invalid, now that
   * it is valid and its filter wants them (the target's outbox asks: src/outbox/outbox.ts
   * askForPlans); hands them off again. Returns the ids this ledger no longer has a hand-off of.
   * Throws while the target's document is not valid (the outbox asks again later).
   */
  async planReleased(targetId: string, deliveryIds: string[]): Promise<{ missing: string[] }> {
    const loaded = await loadConfig(this.env.CONFIG, "target", targetId);
    if (loaded.state !== "valid") throw new Error(`target document target:${targetId} is ${loaded.state}`);
    const missing = this.ctx.storage.transactionSync(() => planReleased(this.sql, { id: targetId, config: loaded.config }, deliveryIds, Date.now()));
    this.pushSoon();
    return { missing };
  }

  /** A delivery's pull side: its stored enrichment, the targets that wait (or waited) for it, its file downloads. */
  async pullView(deliveryId: string): Promise<{ enrichment: EnrichmentRecord | null; handoffs: EnrichingHandoff[]; downloads: DownloadRow[] }> {
    return {
      enrichment: readEnrichment(this.sql, deliveryId),
      handoffs: enrichingHandoffs(this.sql, deliveryId),
      downloads: listDownloads(this.sql, { deliveryId, limit: 100 }),
    };
  }

  /** Appends a download audit row (durable when the promise resolves). */
  async recordDownload(entry: DownloadEntry): Promise<void> {
    this.ctx.storage.transactionSync(() => recordDownload(this.sql, entry));
  }

  /** Download audit rows of the source, newest first. */
  async listDownloads(limit: number): Promise<DownloadRow[]> {
    return listDownloads(this.sql, { limit });
  }

  /** Held and waiting enriching hand-offs and download counts. */
  async pullStats(): Promise<PullLedgerStats> {
    return pullLedgerStats(this.sql);
  }

  /**
   * Arms the alarm at the earliest pending hand-off (not before `notBefore`) or due job, unless it
   * is armed earlier already.
   */
  private async ensureAlarm(notBefore = 0): Promise<void> {
    const handoff = nextHandoffAt(this.sql);
    const job = nextJobAt(this.sql);
    if (handoff === null && job === null) return;
    const next = Math.min(handoff === null ? Infinity : Math.max(handoff, notBefore), job ?? Infinity);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  /** One slice of every due job, earliest first; a failing slice is recorded on its job and retried later, the others still run. */
  private async runDueJobs(now: number): Promise<void> {
    const due = dueJobs(this.sql, now);
    for (const kind of due) {
      try {
        await this.runJob(kind, now);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        log("error", "ledger job failed; retrying later", { source: ledgerSource(this.sql), job: kind, error: message });
        const job = readJob<unknown>(this.sql, kind, {});
        writeJob(this.sql, { ...job, dueAt: now + JOB_RETRY_MS, lastRunAt: now, lastError: message });
      }
    }
    // A pause before the next alarm run, so that a long job (a full re-verification) takes a bounded share of the object's time.
    if (due.length > 0) await new Promise((resolve) => setTimeout(resolve, this.jobPaceMs));
  }

  /** One slice of a job. */
  private async runJob(kind: JobKind, now: number): Promise<void> {
    if (kind === "verify") this.verifyStep(now, null);
    else if (kind === "archive") await this.archiveStep(now);
    else await this.pruneStep(now);
  }

  /**
   * One slice of retention (retention.ts) under the source's `retention`, read from KV each run:
   * never beyond the archived records. Without retention it looks again daily (the document may change).
   */
  private async pruneStep(now: number): Promise<void> {
    const source = ledgerSource(this.sql);
    const loaded = source === "" ? null : await loadConfig(this.env.CONFIG, "source", source);
    // Without a retention nothing is pruned, but removed ids still expire; the job looks again daily (the document may change).
    const retention = (loaded?.state === "valid" ? loaded.config.retention : undefined) ?? {};
    // After the await: read the jobs' rows again.
    const job = readJob(this.sql, "prune", PRUNE_INITIAL);
    const archivedThrough = readJob(this.sql, "archive", ARCHIVE_INITIAL).state.through.seq;
    const outcome = this.ctx.storage.transactionSync(() => {
      const o = pruneSlice(this.sql, retention, job.state, archivedThrough, now);
      writeJob(this.sql, {
        ...job,
        state: o.state,
        dueAt: o.error ? now + DAY_MS : Math.min(o.dueAt ?? Infinity, now + DAY_MS),
        lastRunAt: now,
        lastError: o.error,
      });
      return o;
    });
    if (outcome.error) log("error", "ledger pruning stopped", { source, error: outcome.error });
    else if (outcome.bodies + outcome.records > 0) {
      log("info", "ledger pruned", { source, bodies: outcome.bodies, records: outcome.records });
      await auditSystemAfter(this.env, "system", {
        action: "source.retention-prune",
        object: { source },
        after: { bodies: outcome.bodies, records: outcome.records, retention },
      });
    }
  }

  /** One segment to R2 (archive.ts), or nothing when the tail is still open. */
  private async archiveStep(now: number): Promise<void> {
    const before = readJob(this.sql, "archive", ARCHIVE_INITIAL);
    const save = (state: ArchiveState) => writeJob(this.sql, { ...readJob(this.sql, "archive", ARCHIVE_INITIAL), state });
    const deps = {
      sql: this.sql,
      bucket: this.env.ARCHIVE,
      source: ledgerSource(this.sql),
      now,
      limits: this.segmentLimits,
      pause: () => new Promise<void>((resolve) => setTimeout(resolve, 0)),
    };
    const outcome = await archiveSlice(deps, before.state, save);
    // After the awaits: keep a due time a record set meanwhile, if earlier than the outcome's.
    const current = readJob(this.sql, "archive", ARCHIVE_INITIAL);
    const setMeanwhile = current.dueAt !== before.dueAt ? current.dueAt : null;
    const dueAt = outcome.dueAt === null ? setMeanwhile : Math.min(outcome.dueAt, setMeanwhile ?? Infinity);
    writeJob(this.sql, { ...current, state: outcome.state, dueAt, lastRunAt: now, lastError: outcome.halted });
    this.archiveScheduled = dueAt !== null;
    // Newly archived records may be old enough for retention.
    if (outcome.archived) scheduleJob(this.sql, "prune", now);
    if (outcome.halted) log("error", "ledger archive halted", { source: deps.source, error: outcome.halted });
  }

  /**
   * One slice of the integrity check: of the run in progress, or of a new one (`start`; null, from
   * the alarm: the daily incremental run). Stores the progress, and the report when the run ends.
   */
  private verifyStep(now: number, start: "incremental" | "full" | null): VerifyState {
    const job = readJob(this.sql, "verify", VERIFY_INITIAL);
    let state = job.state;
    const anchor = this.chainAnchor();
    const head = this.headSeq();
    if (state.run === null || (start === "full" && state.run.mode !== "full")) {
      const mode = start ?? "incremental";
      // An incremental run with nothing after the checkpoint has nothing to do: the report stays as it is.
      if (mode === "incremental" && Math.max(state.checkpoint?.seq ?? 0, anchor.seq) >= head) {
        writeJob(this.sql, { ...job, dueAt: now + DAY_MS, lastRunAt: now, lastError: null });
        return state;
      }
      state = startRun(state, mode, anchor, head, now);
    }
    const run = state.run!;
    const slice = verifySlice(this.sql, nextFrom(run, anchor), run.upTo, this.integritySlice);
    const advanced = advanceRun(state, slice, now);
    writeJob(this.sql, { ...job, state: advanced.state, dueAt: advanced.state.run ? now : now + DAY_MS, lastRunAt: now, lastError: null });
    const report = advanced.report;
    if (report) {
      writeMeta(this.sql, "integrity", report);
      const fields = { source: ledgerSource(this.sql), mode: report.mode, checked: report.checked, verifiedThrough: report.verifiedThrough };
      if (report.ok) log("info", "ledger integrity intact", { ...fields, headHash: report.headHash });
      else log("error", "ledger integrity broken", { ...fields, firstBroken: report.firstBroken });
    }
    return advanced.state;
  }

  private lifecycleStatus(): LedgerLifecycle {
    const head = this.headSeq();
    const archive = readJob(this.sql, "archive", ARCHIVE_INITIAL);
    const prune = readJob(this.sql, "prune", PRUNE_INITIAL);
    const { through, segments, records, bytes, lastArchivedAt } = archive.state;
    return {
      head,
      archive: {
        archivedThrough: through.seq,
        lagRecords: head - through.seq,
        segments,
        records,
        bytes,
        lastArchivedAt,
        nextAt: archive.dueAt,
        halted: archive.lastError,
      },
      retention: {
        bodiesPrunedThrough: prune.state.bodiesThrough,
        recordsPrunedThrough: prune.state.recordsThrough.seq,
        prunedBodies: readCounter(this.sql, COUNTER.prunedBodies),
        prunedRecords: readCounter(this.sql, COUNTER.prunedRecords),
        lastPrunedAt: prune.state.lastPrunedAt,
        nextAt: prune.dueAt,
        error: prune.lastError,
        ...heldBackStatus(prune.state),
      },
      integrity: this.integrityStatus(readJob(this.sql, "verify", VERIFY_INITIAL).state),
    };
  }

  /** The status the admin API and the dashboard show. */
  private integrityStatus(state: VerifyState): IntegrityStatus {
    const run = state.run;
    return {
      report: storedReport(readMeta(this.sql, "integrity")),
      running: run && { mode: run.mode, through: run.at.seq, upTo: run.upTo, startedAt: run.startedAt, checked: run.checked },
      verifiedThrough: state.checkpoint?.seq ?? 0,
      head: this.headSeq(),
    };
  }

  /** The newest record's seq (0 for an empty ledger). */
  private headSeq(): number {
    return this.chainHead()?.seq ?? 0;
  }

  /** Where the chain starts in this ledger: before record 1, or at the last record retention removed. */
  private chainAnchor(): ChainPoint {
    return readJob(this.sql, "prune", PRUNE_INITIAL).state.recordsThrough;
  }

  /** The earliest delivery within the horizon whose body has this hash, or null. */
  private earlierWithSameBody(bodySha256: string, receivedAt: number): string | null {
    const row = this.sql
      .exec<{ delivery_id: string }>(
        "SELECT delivery_id FROM deliveries WHERE body_sha256 = ? AND received_at >= ? ORDER BY seq LIMIT 1",
        bodySha256,
        receivedAt - SAME_BODY_HORIZON_MS,
      )
      .toArray()[0];
    return row?.delivery_id ?? null;
  }
}

/** The stored report; one kept before incremental checks (a full check, fewer fields) reads as a full run from record 1. */
function storedReport(
  stored: (Pick<IntegrityReport, "ok" | "checked" | "headHash" | "firstBroken" | "checkedAt"> & Partial<IntegrityReport>) | null,
): IntegrityReport | null {
  if (!stored) return null;
  return { mode: "full", fromSeq: 1, verifiedThrough: stored.checked, prunedBodies: 0, startedAt: stored.checkedAt, ...stored };
}

/** Adds a CloudEvents extension attribute to a serialized envelope, keeping `data` last. */
function withExtension(envelope: string, name: string, value: string): string {
  const { data, ...attributes } = JSON.parse(envelope) as Record<string, unknown>;
  return JSON.stringify({ ...attributes, [name]: value, data });
}
