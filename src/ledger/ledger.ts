import { DurableObject } from "cloudflare:workers";
import type { TrendPoint } from "../lib/trends";
import { loadConfig } from "../config/store";
import type { Bindings } from "../env";
import { bumpCounter } from "../lib/counters";
import { log } from "../lib/log";
import { meterSql, type Usage } from "../lib/meter";
import { migrate } from "../lib/migrate";
import { PULL_HANDOFF } from "../pull/plan";
import type { StoredEnrichment } from "../pull/facts";
import { SEGMENT_LIMITS, type SegmentLimits } from "./archive";
import type { DownloadEntry, DownloadRow, PullLedgerStats } from "./enrichment";
import { listDownloads, planReleased, pullLedgerStats, pullView, recordDownload, releaseEnrichment, storeEnrichment } from "./enrichment";
import { EXPORT_PAGE, exportPage, exportRange } from "./export";
import { type HandoffHost, type HandoffLanes, handoffLanes, type OutboxPort } from "./handoff-lanes";
import { appendHandshake, HANDSHAKE_LOG_CAP } from "./handshakes";
import { INTEGRITY_SLICE, type SliceLimits } from "./integrity";
import { chainAnchor, integrityStatus, type JobHost, lastFullAt, lifecycleStatus, nextAlarmAt, runDueJobs, verifyStep } from "./job-runners";
import type { DeliveryRecord, HandshakeEntry, IntegrityStatus, KnownDelivery, LedgerLifecycle, LedgerStats, ListFilter } from "./queries";
import {
  getDelivery,
  knownDeliveries,
  ledgerMetrics,
  ledgerTrend,
  ledgerSource,
  ledgerStats,
  listDeliveries,
  listHandshakes,
  rejectedCounter,
} from "./queries";
import { JOB_PACE_MS } from "./pacing";
import { chainHead, newRecordMemo, recordDelivery } from "./record";
import { replayFromLedger, type ReplayHost } from "./replay";
import { LEDGER_MIGRATIONS } from "./schema";
import type { DeliveryDetail, RecordInput, RecordResult, ReplayResult } from "./types";

/** Wait before the alarm runs again after an unexpected error. */
const ERROR_RETRY_MS = 30_000;
/** When a record starts a hand-off at once, the alarm is armed this much later, as the at-least-once fallback. */
const FALLBACK_ALARM_MS = 5_000;

/**
 * The ledger of one source (Durable Object named by source id), a thin class: each RPC method
 * delegates to the module that owns its table. `record` (record.ts) stores a delivery, its link and
 * its hand-offs in one transaction, idempotent on the delivery id; the lanes (handoff-lanes.ts) hand
 * them to the outboxes (at-least-once; an outbox is idempotent on (source, delivery id)); the
 * alarm retries them and runs the jobs (job-runners.ts). A path that leaves a hand-off pending arms the alarm.
 */
export class Ledger extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  /** Billing units of this instance (lib/meter.ts). */
  private readonly meter: ReturnType<typeof meterSql>;
  /** Bounds, fields so tests can make them small (read at each use): the handshake log, an integrity slice, the pause after a job run (ms), an archive segment, an export page. */
  protected handshakeCap = HANDSHAKE_LOG_CAP;
  protected integritySlice: SliceLimits = INTEGRITY_SLICE;
  protected jobPaceMs = JOB_PACE_MS;
  protected segmentLimits: SegmentLimits = SEGMENT_LIMITS;
  protected exportPageLimits = EXPORT_PAGE;
  /** Where a target's items are handed off: its outbox. A seam, so tests can make a hand-off fail without touching `env`. */
  protected outboxFor = (targetId: string, source = ""): OutboxPort =>
    targetId === PULL_HANDOFF ? this.env.PULLER.get(this.env.PULLER.idFromName(source)) : this.env.OUTBOX.get(this.env.OUTBOX.idFromName(targetId));
  /** What this instance knows of the chain's head, the stored source id and the archive job (record.ts). */
  private readonly memo = newRecordMemo();
  /** The narrow interface the modules talk to this object through. */
  private readonly host: JobHost & HandoffHost & ReplayHost;
  private readonly lanes: HandoffLanes;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.meter = meterSql(ctx.storage.sql);
    this.sql = this.meter.sql;
    this.host = {
      sql: this.sql,
      env,
      transaction: (f) => ctx.storage.transactionSync(f),
      outboxFor: (targetId, source) => this.outboxFor(targetId, source),
      waitUntil: (promise) => ctx.waitUntil(promise),
      ensureAlarm: () => this.ensureAlarm(),
      limits: () => ({ integritySlice: this.integritySlice, segmentLimits: this.segmentLimits, jobPaceMs: this.jobPaceMs }),
      headSeq: () => this.headSeq(),
      archiveScheduled: (scheduled) => void (this.memo.archiveScheduled = scheduled),
    };
    this.lanes = handoffLanes(this.host);
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, LEDGER_MIGRATIONS));
  }

  /** Records a delivery (or counts a duplicate); durable when the promise resolves. */
  async record(input: RecordInput): Promise<RecordResult> {
    this.meter.usage.requests++;
    const result = recordDelivery(this.host, input, this.memo);
    const targets = [...input.targets, ...(input.unfilteredTargets ?? [])];
    if (result.status === "accepted" && targets.length > 0) {
      // Hand over at once, off the response path; the alarm stays armed as the at-least-once fallback.
      await this.ensureAlarm(input.receivedAt + FALLBACK_ALARM_MS);
      this.lanes.soon(targets);
    } else {
      // A duplicate too: CentrePoint's resend is a chance to restart a hand-off whose alarm was lost.
      await this.ensureAlarm();
    }
    return result;
  }

  /** Appends a validation handshake to the audit log (never a delivery, never handed off); keeps the newest `handshakeCap` rows. */
  async recordHandshake(input: HandshakeEntry): Promise<void> {
    this.meter.usage.requests++;
    this.ctx.storage.transactionSync(() => appendHandshake(this.sql, input, this.handshakeCap));
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
   * The records an export of received times [from, to) covers, as a contiguous seq range that starts
   * after the chain's anchor (records retention removed are the archive's), so its chain checks on
   * its own (export.ts). `prunedThrough`: the anchor's seq, so a caller can say a range starts later.
   */
  async exportRange(from?: number, to?: number): Promise<{ firstSeq: number; lastSeq: number; prunedThrough: number } | null> {
    return exportRange(this.sql, chainAnchor(this.sql).seq, from, to);
  }

  /** NDJSON of records `firstSeq`.. (at most `lastSeq`), one page bounded by rows and bytes; `next` continues, null at the end. */
  async exportPage(firstSeq: number, lastSeq: number): Promise<{ text: string; next: number | null }> {
    return exportPage(this.sql, firstSeq, lastSeq, this.exportPageLimits);
  }

  /** Hands a delivery to these targets' outboxes again, as a new dispatch, from the ledger's payload or the archive's (replay.ts). */
  async replay(deliveryId: string, targets: string[]): Promise<ReplayResult> {
    return replayFromLedger(this.host, deliveryId, targets);
  }

  /** The latest integrity report and the run in progress; checks nothing (the overview and metrics read this). */
  async integrity(): Promise<IntegrityStatus> {
    return integrityStatus(this.sql, this.headSeq());
  }

  /**
   * Starts an incremental integrity run (checkpoint → newest record), or a full one (`full`, or the
   * last full run older than `fullIfOlderThanMs`; it turns a running incremental run into a full one).
   * Verifies one slice now, the rest from the alarm (job-runners.ts verifyStep); says how far it got.
   */
  async checkIntegrity(options: { full?: boolean; fullIfOlderThanMs?: number } = {}): Promise<IntegrityStatus> {
    const now = Date.now();
    const last = lastFullAt(this.sql);
    const full = options.full === true || (options.fullIfOlderThanMs !== undefined && (last === null || now - last >= options.fullIfOlderThanMs));
    const state = verifyStep(this.host, now, full ? "full" : "incremental");
    await this.ensureAlarm();
    return integrityStatus(this.sql, this.headSeq(), state);
  }

  /** Counts a request refused before it could be recorded (metrics); `reason` is a short code from a fixed set. */
  async countRejection(reason: string): Promise<void> {
    this.meter.usage.requests++;
    bumpCounter(this.sql, rejectedCounter(reason));
  }

  /** Accepted and duplicate counts per kind, rejections per reason, archive, retention and integrity, and this instance's billing units (hot path: record, hand-off, handshakes, rejections). */
  async metrics(): Promise<ReturnType<typeof ledgerMetrics> & { lifecycle: LedgerLifecycle; usage: Usage }> {
    const m = { ...ledgerMetrics(this.sql), lifecycle: lifecycleStatus(this.sql, this.headSeq()) };
    this.meter.settle();
    return { ...m, usage: { ...this.meter.usage } };
  }

  /** Hourly deliveries, duplicates and refusals of the last `hours` hours (lib/trends.ts). */
  async trends(hours: number): Promise<TrendPoint[]> {
    return ledgerTrend(this.sql, hours, Date.now());
  }

  /** Archive, retention and integrity progress, from the jobs' stored state and the counters. */
  async lifecycle(): Promise<LedgerLifecycle> {
    return lifecycleStatus(this.sql, this.headSeq());
  }

  /** Counts for the dashboard and metrics. */
  async stats(): Promise<LedgerStats> {
    return ledgerStats(this.sql);
  }

  /**
   * Hands due hand-offs to their targets' outboxes, then runs one slice of each due background
   * job (job-runners.ts), and re-arms for the rest. Never throws (the platform retries a throwing
   * alarm only a few times, then never again): an unexpected error is logged and the alarm
   * re-armed ERROR_RETRY_MS later. Safe to run twice.
   */
  override async alarm(): Promise<void> {
    this.meter.usage.requests++;
    try {
      // Hand-offs in flight end first (their rows are not due twice); then the alarm hands over the rest.
      await this.lanes.settle();
      this.lanes.start(Date.now());
      await this.lanes.settle();
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

  // ---- the pull side (docs/pull.md): enrichment beside the record, file-link downloads ----

  /** Stores the enrichment the Puller looked up (the latest attempt's) and hands off every waiting target it completes. Idempotent. */
  async storeEnrichment(deliveryId: string, stored: StoredEnrichment): Promise<{ ready: number }> {
    const ready = this.ctx.storage.transactionSync(() => storeEnrichment(this.sql, deliveryId, stored, Date.now()));
    if (ready > 0) this.lanes.soon();
    return { ready };
  }

  /** Hands off now every hand-off of a delivery that waits for its enrichment, with whatever was found (the operator's "release"). */
  async releaseEnrichment(deliveryId: string): Promise<{ released: number }> {
    const released = this.ctx.storage.transactionSync(() => releaseEnrichment(this.sql, deliveryId, Date.now()));
    if (released > 0) this.lanes.soon();
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
    this.lanes.soon();
    return { missing };
  }

  /** A delivery's pull side: its stored enrichment, the targets that wait (or waited) for it, its file downloads. */
  async pullView(deliveryId: string): Promise<ReturnType<typeof pullView>> {
    return pullView(this.sql, deliveryId);
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

  /** Arms the alarm at the earliest pending hand-off (not before `notBefore`) or due job, unless it is armed earlier already. */
  private async ensureAlarm(notBefore = 0): Promise<void> {
    const next = nextAlarmAt(this.sql, notBefore);
    if (next === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  /** One slice of every due job (job-runners.ts); a method, so a test can make it throw. */
  private async runDueJobs(now: number): Promise<void> {
    await runDueJobs(this.host, now);
  }

  /** The newest record's seq (0 for an empty ledger). */
  private headSeq(): number {
    return chainHead(this.sql, this.memo)?.seq ?? 0;
  }
}
