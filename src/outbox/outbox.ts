import { DurableObject } from "cloudflare:workers";
import type { TargetConfig } from "../config/schemas";
import { type Loaded, loadConfig } from "../config/store";
import type { Bindings } from "../env";
import { BATCH_BYTES, takeByBytes } from "../lib/batch";
import { log } from "../lib/log";
import { migrate } from "../lib/migrate";
import { err, ok, type Result } from "../lib/result";
import { planRetry } from "./backoff";
import { type BreakerState, type BreakerStatus, breakerAllows, breakerFailure, breakerStatus, CLOSED_BREAKER } from "./breaker";
import { type AttemptResult, buildRequest, type ErrorClass, redactResult, type ResolvedTarget, resolveTarget, sendRequest } from "./deliver";
import { targetWants } from "./match";
import { OUTBOX_MIGRATIONS } from "./schema";
import type { OutboxItem } from "./types";

/** Deliveries sent per alarm run at most, per unit of the target's concurrency; more due rows re-arm the alarm at once. */
const BATCH_PER_SLOT = 4;
/** Smallest batch of an alarm run. */
const MIN_BATCH = 25;
/** How often a target held for its configuration re-reads it. */
export const HOLD_RECHECK_MS = 5 * 60_000;
/** Wait before re-running after an unexpected error in the alarm. */
const ERROR_RETRY_MS = 30_000;
/** Items per enqueue call at most (the ledger pushes far fewer). */
const MAX_ENQUEUE = 1000;
/** Rows per list page and per bulk replay at most. */
export const MAX_LIST = 200;
export const MAX_REPLAY = 1000;
/** Upper bounds (seconds) of the accept-to-delivered latency histogram. */
export const LATENCY_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400] as const;
/** Attempts shown per delivery (the most recent). */
const ATTEMPTS_SHOWN = 100;

export type DeliveryState = "pending" | "delivering" | "delivered" | "dead" | "held" | "not_wanted";

/** One delivery to this target, as the admin API shows it. Times are epoch ms. */
export interface DeliveryView {
  source: string;
  deliveryId: string;
  kind: string;
  subject: string | null;
  receivedAt: number;
  state: DeliveryState;
  /** Attempts since the window started (enqueue, replay or resume); the full history is in attempts. */
  windowAttempts: number;
  nextAt: number | null;
  firstPlannedAt: number;
  lastError: string | null;
  deliveredAt: number | null;
  enqueuedAt: number;
  updatedAt: number;
}

/** One attempt; `in_flight` until it completes, `interrupted` when the relay stopped mid-attempt. */
export interface AttemptView {
  n: number;
  startedAt: number;
  durationMs: number | null;
  status: number | null;
  responseHeaders: Record<string, string> | null;
  responseBody: string | null;
  errorClass: ErrorClass | null;
  error: string | null;
  outcome: "in_flight" | "success" | "failure" | "interrupted";
}

/** Filter of list and replayWhere; from/to bound received_at (epoch ms, from inclusive, to exclusive). */
export interface DeliveryFilter {
  state?: DeliveryState;
  source?: string;
  from?: number;
  to?: number;
  limit: number;
}

/** What health() reports. */
export interface OutboxHealth {
  targetId: string | null;
  counts: Record<DeliveryState, number>;
  /** Age of the oldest pending delivery since it was (re)planned, ms. */
  oldestPendingAgeMs: number | null;
  heldBy: "gone" | "config" | null;
  heldReason: string | null;
  breaker: { status: BreakerStatus; consecutiveFailures: number; probeAt: number | null };
  lastError: { at: number; message: string } | null;
  lastSuccessAt: number | null;
}

type DeliveryRow = {
  seq: number;
  source: string;
  delivery_id: string;
  kind: string;
  subject: string | null;
  received_at: number;
  state: string;
  window_attempts: number;
  next_at: number | null;
  first_planned_at: number;
  last_error: string | null;
  delivered_at: number | null;
  enqueued_at: number;
  updated_at: number;
};
type PayloadRow = DeliveryRow & { envelope: string; body: ArrayBuffer; headers: string };
type AttemptRow = {
  n: number;
  started_at: number;
  duration_ms: number | null;
  status: number | null;
  response_headers: string | null;
  response_body: string | null;
  error_class: string | null;
  error: string | null;
  outcome: string;
};
type MetaRow = {
  target_id: string | null;
  ordered: number;
  held_by: string | null;
  held_reason: string | null;
  breaker_failures: number;
  breaker_probe_at: number | null;
  breaker_cooldown_ms: number;
  last_error: string | null;
  last_error_at: number | null;
  last_success_at: number | null;
};

const DELIVERY_COLUMNS =
  "seq, source, delivery_id, kind, subject, received_at, state, window_attempts, next_at, first_planned_at, last_error, delivered_at, enqueued_at, updated_at";

/** The rows of one alarm run's sends share this. */
interface Run {
  config: TargetConfig;
  target: ResolvedTarget;
  probe: boolean;
}

/**
 * One target's delivery queue ("one alarm, many rows"): every (source, delivery id) handed to
 * this target is a row; the single alarm is armed at the earliest due row and sends a bounded
 * batch. SQLite is the truth: each attempt is written (in_flight) before its fetch and completed
 * after it, so an eviction loses nothing and the interrupted attempt is visible and retried.
 * Delivery is at-least-once; receivers dedupe on `webhook-id`.
 */
export class Outbox extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  /** True while this instance's alarm is sending; `delivering` rows are stale otherwise. */
  private running = false;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, OUTBOX_MIGRATIONS));
  }

  /**
   * Adds deliveries for this target. Idempotent on (source, deliveryId): a repeated item is a
   * duplicate and changes nothing. Arms the alarm.
   */
  async enqueue(targetId: string, items: OutboxItem[]): Promise<{ inserted: number; duplicates: number }> {
    if (items.length > MAX_ENQUEUE) throw new RangeError(`enqueue takes at most ${MAX_ENQUEUE} items`);
    const meta = this.meta();
    if (meta.target_id !== null && meta.target_id !== targetId) throw new Error(`outbox of ${meta.target_id} got items for ${targetId}`);
    const now = Date.now();
    const paused = meta.held_by === "gone";
    let inserted = 0;
    this.ctx.storage.transactionSync(() => {
      if (meta.target_id === null) this.sql.exec("UPDATE meta SET target_id = ?", targetId);
      for (const item of items) {
        inserted += this.sql
          .exec(
            `INSERT INTO deliveries (source, delivery_id, kind, subject, received_at, envelope, body, headers, state, next_at, first_planned_at, last_error, enqueued_at, updated_at, unfiltered)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, delivery_id) DO NOTHING RETURNING seq`,
            item.source,
            item.deliveryId,
            item.kind,
            item.subject,
            item.receivedAt,
            item.envelope,
            item.body.slice().buffer,
            JSON.stringify(item.headers),
            paused ? "held" : "pending",
            paused ? null : now,
            now,
            paused ? meta.held_reason : null,
            now,
            now,
            item.unfiltered ? 1 : 0,
          )
          .toArray().length;
      }
    });
    await this.arm();
    return { inserted, duplicates: items.length - inserted };
  }

  /** One delivery with its most recent attempts (oldest first), or null when this target never had it. */
  async getDelivery(source: string, deliveryId: string): Promise<{ delivery: DeliveryView; attempts: AttemptView[] } | null> {
    const row = this.sql.exec<DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE source = ? AND delivery_id = ?`, source, deliveryId).toArray()[0];
    if (!row) return null;
    const attempts = this.sql
      .exec<AttemptRow>("SELECT * FROM attempts WHERE seq = ? ORDER BY n DESC LIMIT ?", row.seq, ATTEMPTS_SHOWN)
      .toArray()
      .reverse()
      .map(rowToAttempt);
    return { delivery: rowToDelivery(row), attempts };
  }

  /** A page of deliveries, newest enqueued first; pass the returned cursor for the next page. */
  async list(filter: DeliveryFilter & { cursor?: string }): Promise<{ items: DeliveryView[]; cursor: string | null }> {
    const limit = Math.min(Math.max(filter.limit, 1), MAX_LIST);
    const before = filter.cursor && /^\d{1,15}$/.test(filter.cursor) ? Number(filter.cursor) : null;
    const rows = this.sql
      .exec<DeliveryRow>(
        `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE ${FILTER_SQL} AND (?5 IS NULL OR seq < ?5) ORDER BY seq DESC LIMIT ?6`,
        ...filterParams(filter),
        before,
        limit + 1,
      )
      .toArray();
    const page = rows.slice(0, limit);
    return { items: page.map(rowToDelivery), cursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null };
  }

  /** Counts, backlog age, hold, breaker and last outcomes of this target. */
  async health(): Promise<OutboxHealth> {
    const now = Date.now();
    const meta = this.meta();
    const counts: Record<DeliveryState, number> = { pending: 0, delivering: 0, delivered: 0, dead: 0, held: 0, not_wanted: 0 };
    for (const r of this.sql.exec<{ state: string; n: number }>("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state"))
      counts[r.state as DeliveryState] = r.n;
    const oldest = this.sql.exec<{ at: number | null }>("SELECT MIN(first_planned_at) AS at FROM deliveries WHERE state IN ('pending', 'delivering')").one().at;
    const breaker = metaBreaker(meta);
    return {
      targetId: meta.target_id,
      counts,
      oldestPendingAgeMs: oldest === null ? null : Math.max(0, now - oldest),
      heldBy: meta.held_by as OutboxHealth["heldBy"],
      heldReason: meta.held_reason,
      breaker: { status: breakerStatus(breaker, now), consecutiveFailures: breaker.failures, probeAt: breaker.probeAt },
      lastError: meta.last_error === null ? null : { at: meta.last_error_at ?? 0, message: meta.last_error },
      lastSuccessAt: meta.last_success_at,
    };
  }

  /**
   * Counters for /admin/metrics: attempts by outcome and error class, and accept-to-delivered
   * latency of delivered rows as per-bucket counts over LATENCY_BUCKETS_S (last = overflow).
   * A replayed delivery counts with its latest delivery.
   */
  async metrics(): Promise<{ attempts: { outcome: string; errorClass: string | null; count: number }[]; latency: { counts: number[]; sumSeconds: number } }> {
    const attempts = this.sql
      .exec<{ outcome: string; error_class: string | null; n: number }>(
        "SELECT outcome, error_class, COUNT(*) AS n FROM attempts GROUP BY outcome, error_class ORDER BY outcome, error_class",
      )
      .toArray()
      .map((r) => ({ outcome: r.outcome, errorClass: r.error_class, count: r.n }));
    const edges = [0, ...LATENCY_BUCKETS_S.map((b) => b * 1000)];
    const columns = edges.map((lo, i) => (i < LATENCY_BUCKETS_S.length ? `SUM(lat > ${lo} AND lat <= ${edges[i + 1]})` : `SUM(lat > ${lo})`));
    const row = this.sql
      .exec(
        `SELECT ${columns.map((c, i) => `COALESCE(${c}, 0) AS b${i}`).join(", ")}, COALESCE(SUM(lat), 0) AS total FROM (SELECT MAX(0, delivered_at - received_at) AS lat FROM deliveries WHERE state = 'delivered')`,
      )
      .one();
    return { attempts, latency: { counts: edges.map((_, i) => row[`b${i}`] as number), sumSeconds: (row.total as number) / 1000 } };
  }

  /**
   * Sends one delivery again. Idempotent: a pending, delivering or held delivery is left alone;
   * a delivered or dead one goes back to pending with a fresh window (attempt history kept).
   */
  async replay(source: string, deliveryId: string): Promise<{ found: boolean; replayed: boolean }> {
    const row = this.sql.exec<{ seq: number }>("SELECT seq FROM deliveries WHERE source = ? AND delivery_id = ?", source, deliveryId).toArray()[0];
    if (!row) return { found: false, replayed: false };
    const replayed = this.replanWhere("seq = ?1 AND state IN ('delivered', 'dead')", [row.seq], Date.now()) > 0;
    if (replayed) await this.arm();
    return { found: true, replayed };
  }

  /**
   * replay() for up to `limit` (≤ 1000) delivered or dead deliveries matching the filter (state
   * defaults to both), oldest first. `remaining` counts the matching ones left for another call.
   */
  async replayWhere(filter: DeliveryFilter): Promise<{ replayed: number; remaining: number }> {
    if (filter.state !== undefined && filter.state !== "dead" && filter.state !== "delivered") return { replayed: 0, remaining: 0 };
    const limit = Math.min(Math.max(filter.limit, 1), MAX_REPLAY);
    const params = filterParams(filter);
    const replayable = `${FILTER_SQL} AND state IN ('delivered', 'dead')`;
    const replayed = this.replanWhere(`seq IN (SELECT seq FROM deliveries WHERE ${replayable} ORDER BY seq LIMIT ?5)`, [...params, limit], Date.now());
    const remaining = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM deliveries WHERE ${replayable}`, ...params).one().n;
    if (replayed > 0) await this.arm();
    return { replayed, remaining };
  }

  /**
   * The target is (re-)enabled: held deliveries go back to pending with a fresh window, the
   * 410 pause is lifted and the breaker closed. Idempotent.
   */
  async resume(): Promise<{ resumed: number }> {
    const now = Date.now();
    let resumed = 0;
    this.ctx.storage.transactionSync(() => {
      resumed = this.release(now);
      this.saveBreaker(CLOSED_BREAKER);
    });
    await this.arm();
    return { resumed };
  }

  /**
   * Sends a bounded batch of due deliveries and re-arms for the rest. Never throws (the platform
   * retries a throwing alarm only a few times): errors become recorded state and a re-armed alarm.
   * Safe to run twice: only `pending` rows are taken, each claimed synchronously before its fetch.
   */
  override async alarm(): Promise<void> {
    if (this.running) return; // alarms do not overlap; this guards against a re-entrant call
    this.running = true;
    let notBefore = 0;
    try {
      await this.run();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log("error", "outbox alarm failed", { target: this.meta().target_id, error: message });
      this.noteError(`internal: ${message}`, Date.now());
      notBefore = Date.now() + ERROR_RETRY_MS;
    } finally {
      this.running = false;
    }
    try {
      await this.arm(notBefore);
    } catch (e) {
      log("error", "outbox could not re-arm its alarm", { target: this.meta().target_id, error: String(e) });
    }
  }

  private async run(): Promise<void> {
    const now = Date.now();
    const recovered = this.recoverInterrupted(now);
    const targetId = this.meta().target_id;
    if (targetId === null) return;
    if (this.meta().held_by === "gone") {
      this.hold("gone", "paused", now); // rows replayed or enqueued while paused
      return;
    }
    const loaded = await loadConfig(this.env.CONFIG, "target", targetId);
    // After an await, state may have changed (resume, enqueue, replay): read it again.
    if (this.meta().held_by === "gone") return;
    if (loaded.state === "valid") this.applyFilter(loaded.config, now);
    const usable = usableConfig(targetId, loaded);
    if (!usable.ok) {
      this.hold("config", usable.error, now);
      return;
    }
    const config = usable.value;
    // An attempt lost with its instance counts against the retry window like a failed one, so an
    // event whose attempts keep dying with the instance still ends dead instead of looping.
    for (const seq of recovered) this.expireIfSpent(seq, config.retry, now);
    this.sql.exec("UPDATE meta SET ordered = ?", config.ordered ? 1 : 0);
    const resolved = resolveTarget(config, this.env, this.env.ALLOW_HTTP_TARGETS === "true");
    if (!resolved.ok) {
      // Never send without the configured auth or signature: record why on the due rows, then hold.
      for (const row of this.dueRows(now, MIN_BATCH, config.ordered)) this.recordConfigFailure(row.seq, resolved.error, now);
      this.hold("config", resolved.error, now);
      return;
    }
    if (this.meta().held_by === "config") this.ctx.storage.transactionSync(() => this.release(now));

    const allowance = breakerAllows(metaBreaker(this.meta()), now);
    if (allowance === "none") return;
    const batch = Math.max(MIN_BATCH, config.concurrency * BATCH_PER_SLOT);
    const due = this.dueRows(now, allowance === "probe" ? 1 : batch, config.ordered);
    if (due.length === 0) return;
    // Watchdog: should this instance die mid-batch, the alarm fires again and recovers the rows.
    await this.ctx.storage.setAlarm(now + Math.ceil(due.length / config.concurrency) * config.timeoutMs + 60_000);
    const run: Run = { config, target: resolved.value, probe: allowance === "probe" };
    await forEachBounded(due, config.concurrency, (row) => this.attempt(row, run));
  }

  /** One attempt of one row: claim and log it (in_flight), send, complete. */
  private async attempt(row: PayloadRow, run: Run): Promise<void> {
    const startedAt = Date.now();
    const attemptId = this.claim(row.seq, startedAt);
    if (attemptId === null) return; // no longer pending (held by a 410 of a sibling, ...)
    let result: AttemptResult;
    try {
      const request = await buildRequest(
        { deliveryId: row.delivery_id, envelope: row.envelope, body: new Uint8Array(row.body), headers: JSON.parse(row.headers) as Record<string, string> },
        run.target,
        startedAt,
      );
      const sent = await sendRequest(request, { fetch: (input, init) => fetch(input, init), now: () => Date.now(), timeoutMs: run.target.timeoutMs });
      result = redactResult(sent, run.target.secrets);
    } catch (e) {
      const error = `could not build the request: ${e instanceof Error ? e.message : String(e)}`;
      result = { ok: false, status: null, headers: null, body: null, errorClass: "config", error, durationMs: 0, retryAfterMs: null };
    }
    this.complete(row.seq, attemptId, result, run, Date.now());
    log(result.ok ? "info" : "warn", "delivery attempt", {
      target: this.meta().target_id,
      source: row.source,
      deliveryId: row.delivery_id,
      outcome: result.ok ? "success" : "failure",
      status: result.status,
      errorClass: result.errorClass,
      ms: result.durationMs,
    });
  }

  /** Marks a pending row delivering and logs an in_flight attempt; null when the row is not pending. */
  private claim(seq: number, now: number): number | null {
    return this.ctx.storage.transactionSync(() => {
      const state = this.sql.exec<{ state: string }>("SELECT state FROM deliveries WHERE seq = ?", seq).toArray()[0]?.state;
      if (state !== "pending") return null;
      this.sql.exec(
        "UPDATE deliveries SET state = 'delivering', window_attempts = window_attempts + 1, next_at = NULL, updated_at = ? WHERE seq = ?",
        now,
        seq,
      );
      return this.insertAttempt(seq, now, "in_flight");
    });
  }

  /** Records the result of an attempt and moves its row on: delivered, pending (retry), dead or held. */
  private complete(seq: number, attemptId: number, result: AttemptResult, run: Run, now: number): void {
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `UPDATE attempts SET duration_ms = ?, status = ?, response_headers = ?, response_body = ?, error_class = ?, error = ?, outcome = ? WHERE id = ?`,
        result.durationMs,
        result.status,
        result.headers && JSON.stringify(result.headers),
        result.body,
        result.errorClass,
        result.error,
        result.ok ? "success" : "failure",
        attemptId,
      );
      const row = this.retryState(seq);
      if (row?.state !== "delivering") return;
      if (result.ok) {
        this.sql.exec("UPDATE deliveries SET state = 'delivered', delivered_at = ?, last_error = NULL, updated_at = ? WHERE seq = ?", now, now, seq);
        this.sql.exec("UPDATE meta SET last_success_at = ?", now);
        this.saveBreaker(CLOSED_BREAKER);
        return;
      }
      const message = result.error ?? "failed";
      this.noteError(message, now);
      if (result.errorClass !== "config") this.saveBreaker(breakerFailure(metaBreaker(this.meta()), now, run.probe, run.config.breaker));
      if (result.status === 410) this.hold("gone", `target answered 410 Gone at ${new Date(now).toISOString()}; disabled until resumed`, now);
      if (this.meta().held_by !== null) {
        this.sql.exec("UPDATE deliveries SET state = 'held', last_error = ?, updated_at = ? WHERE seq = ?", message, now, seq);
        return;
      }
      const plan = planRetry(run.config.retry, row, now, result.retryAfterMs, Math.random);
      if (plan.kind === "dead") this.sql.exec("UPDATE deliveries SET state = 'dead', last_error = ?, updated_at = ? WHERE seq = ?", message, now, seq);
      else this.sql.exec("UPDATE deliveries SET state = 'pending', next_at = ?, last_error = ?, updated_at = ? WHERE seq = ?", plan.at, message, now, seq);
    });
  }

  /**
   * Rows planned while the target's document was invalid meet its filter now that it is valid:
   * wanted rows go on as usual, the rest become not_wanted (never sent, kept for the record).
   */
  private applyFilter(config: TargetConfig, now: number): void {
    const rows = this.sql.exec<{ seq: number; source: string; kind: string }>("SELECT seq, source, kind FROM deliveries WHERE unfiltered = 1").toArray();
    if (rows.length === 0) return;
    this.ctx.storage.transactionSync(() => {
      for (const r of rows) {
        if (targetWants(config, r.source, r.kind)) this.sql.exec("UPDATE deliveries SET unfiltered = 0 WHERE seq = ?", r.seq);
        else
          this.sql.exec(
            "UPDATE deliveries SET unfiltered = 0, state = 'not_wanted', next_at = NULL, last_error = ?, updated_at = ? WHERE seq = ? AND state IN ('pending', 'held')",
            `not wanted by the target's filter (events ${JSON.stringify(config.events)}, sources ${JSON.stringify(config.sources)}): it arrived while the document was invalid`,
            now,
            r.seq,
          );
      }
    });
  }

  /** Logs a `config` failure for a row that was due but cannot be sent. */
  private recordConfigFailure(seq: number, message: string, now: number): void {
    const id = this.insertAttempt(seq, now, "failure");
    this.sql.exec("UPDATE attempts SET duration_ms = 0, error_class = 'config', error = ? WHERE id = ?", message, id);
  }

  private insertAttempt(seq: number, now: number, outcome: AttemptView["outcome"]): number {
    return this.sql
      .exec<{ id: number }>(
        "INSERT INTO attempts (seq, n, started_at, outcome) VALUES (?1, (SELECT COUNT(*) + 1 FROM attempts WHERE seq = ?1), ?2, ?3) RETURNING id",
        seq,
        now,
        outcome,
      )
      .one().id;
  }

  /**
   * Holds every pending row (never drops it) and records why; a 410 pause keeps its reason.
   * Synchronous, so atomic with the caller's other writes.
   */
  private hold(by: "gone" | "config", reason: string, now: number): void {
    this.sql.exec("UPDATE meta SET held_by = ?1, held_reason = ?2 WHERE held_by IS NOT 'gone'", by, reason);
    const why = this.meta().held_reason;
    this.sql.exec("UPDATE deliveries SET state = 'held', next_at = NULL, last_error = ?, updated_at = ? WHERE state = 'pending'", why, now);
  }

  /** Held rows go back to pending with a fresh window and the hold is lifted; returns how many. */
  private release(now: number): number {
    const released = this.replanWhere("state = 'held'", [], now);
    this.sql.exec("UPDATE meta SET held_by = NULL, held_reason = NULL");
    return released;
  }

  /**
   * Puts the rows matching `where` back to pending, due now, with a fresh window; returns how
   * many. `where` must number its parameters (?1, ?2, ...) to match `params`.
   */
  private replanWhere(where: string, params: SqlStorageValue[], now: number): number {
    const t = `?${params.length + 1}`;
    return this.sql
      .exec(
        `UPDATE deliveries SET state = 'pending', next_at = ${t}, first_planned_at = ${t}, window_attempts = 0, last_error = NULL, updated_at = ${t} WHERE ${where} RETURNING seq`,
        ...params,
        now,
      )
      .toArray().length;
  }

  /** Rows left `delivering` by an instance that stopped mid-attempt go back to pending, due now; returns their seqs. */
  private recoverInterrupted(now: number): number[] {
    return this.ctx.storage.transactionSync(() => {
      this.sql.exec("UPDATE attempts SET outcome = 'interrupted', error = 'the relay stopped before the attempt completed' WHERE outcome = 'in_flight'");
      return this.sql
        .exec<{ seq: number }>("UPDATE deliveries SET state = 'pending', next_at = ?, updated_at = ? WHERE state = 'delivering' RETURNING seq", now, now)
        .toArray()
        .map((r) => r.seq);
    });
  }

  /** What the dead rule reads of a row: its state and its retry window so far; undefined when gone. */
  private retryState(seq: number): { state: string; windowAttempts: number; firstPlannedAt: number } | undefined {
    return this.sql
      .exec<{ state: string; windowAttempts: number; firstPlannedAt: number }>(
        "SELECT state, window_attempts AS windowAttempts, first_planned_at AS firstPlannedAt FROM deliveries WHERE seq = ?",
        seq,
      )
      .toArray()[0];
  }

  /** A recovered row whose window or attempt budget is spent becomes dead (the dead rule of a failure). */
  private expireIfSpent(seq: number, retry: TargetConfig["retry"], now: number): void {
    const row = this.retryState(seq);
    if (row?.state !== "pending") return;
    const plan = planRetry(retry, row, now, 0, Math.random);
    if (plan.kind === "dead") {
      this.sql.exec(
        "UPDATE deliveries SET state = 'dead', next_at = NULL, last_error = ?, updated_at = ? WHERE seq = ?",
        "the relay stopped during the last attempt; retry window over",
        now,
        seq,
      );
    }
  }

  /** Due pending rows, earliest first, at most `limit` and cut to the batch byte budget; for ordered targets only the head of each subject lane. */
  private dueRows(now: number, limit: number, ordered: boolean): PayloadRow[] {
    const heads = this.sql
      .exec<{ seq: number; size: number }>(
        `SELECT d.seq, length(d.body) + length(d.envelope) + length(d.headers) AS size FROM deliveries d
         WHERE d.state = 'pending' AND d.unfiltered = 0 AND d.next_at <= ?1 AND ${LANE_HEAD_SQL} ORDER BY d.next_at, d.seq LIMIT ?3`,
        now,
        ordered ? 1 : 0,
        limit,
      )
      .toArray();
    const seqs = takeByBytes(heads, (h) => h.size, BATCH_BYTES).map((h) => h.seq);
    if (seqs.length === 0) return [];
    return this.sql.exec<PayloadRow>(`SELECT * FROM deliveries WHERE seq IN (${seqs.map(() => "?").join(",")}) ORDER BY next_at, seq`, ...seqs).toArray();
  }

  /** When the alarm should next run, or null when nothing waits. */
  private nextWake(now: number): number | null {
    const meta = this.meta();
    const exists = (where: string) => this.sql.exec(`SELECT 1 FROM deliveries WHERE ${where} LIMIT 1`).toArray().length > 0;
    if (meta.held_by === "gone") return exists("state = 'pending'") ? now : null; // the alarm holds them
    if (!this.running && exists("state = 'delivering'")) return now;
    let at = this.sql
      .exec<{ at: number | null }>(`SELECT MIN(d.next_at) AS at FROM deliveries d WHERE d.state = 'pending' AND ${LANE_HEAD_SQL}`, null, meta.ordered)
      .one().at;
    const breaker = metaBreaker(meta);
    if (at !== null && breaker.probeAt !== null) at = Math.max(at, breaker.probeAt);
    if (meta.held_by === "config" && exists("state = 'held'")) {
      at = Math.min(at ?? Infinity, now + HOLD_RECHECK_MS);
    }
    return at;
  }

  /**
   * Arms the single alarm at the next wake (not before `notBefore`). While a run is sending, it
   * only ever moves the alarm earlier, so the run's watchdog stays in place.
   */
  private async arm(notBefore = 0): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    const next = this.nextWake(Date.now());
    if (next === null) {
      if (!this.running && current !== null) await this.ctx.storage.deleteAlarm();
      return;
    }
    const want = Math.max(next, notBefore);
    if (current === null || want < current || (!this.running && want !== current)) await this.ctx.storage.setAlarm(want);
  }

  private meta(): MetaRow {
    return this.sql.exec<MetaRow>("SELECT * FROM meta").one();
  }

  private saveBreaker(b: BreakerState): void {
    this.sql.exec("UPDATE meta SET breaker_failures = ?, breaker_probe_at = ?, breaker_cooldown_ms = ?", b.failures, b.probeAt, b.cooldownMs);
  }

  private noteError(message: string, now: number): void {
    this.sql.exec("UPDATE meta SET last_error = ?, last_error_at = ?", message.slice(0, 500), now);
  }
}

/**
 * Lane rule (?2 = ordered): a row may go when the target is unordered, it has no subject, or no
 * older row of its subject is still pending or delivering. Dead and held rows do not block.
 */
const LANE_HEAD_SQL = `(?2 = 0 OR d.subject IS NULL OR NOT EXISTS (
  SELECT 1 FROM deliveries e WHERE e.subject = d.subject AND e.state IN ('pending', 'delivering')
    AND (e.received_at < d.received_at OR (e.received_at = d.received_at AND e.seq < d.seq))))`;

/** Filter of list/replayWhere over ?1 state, ?2 source, ?3 from, ?4 to. */
const FILTER_SQL = "(?1 IS NULL OR state = ?1) AND (?2 IS NULL OR source = ?2) AND (?3 IS NULL OR received_at >= ?3) AND (?4 IS NULL OR received_at < ?4)";

/** The target's configuration when it can be sent to, else why not. */
function usableConfig(targetId: string, loaded: Loaded<TargetConfig>): Result<TargetConfig, string> {
  if (loaded.state === "missing") return err(`target document target:${targetId} is missing`);
  if (loaded.state === "invalid") return err(`target document is invalid: ${loaded.errors.map((e) => `${e.path} ${e.message}`).join("; ")}`);
  return loaded.config.enabled ? ok(loaded.config) : err("target is disabled");
}

function filterParams(f: Omit<DeliveryFilter, "limit">): SqlStorageValue[] {
  return [f.state ?? null, f.source ?? null, f.from ?? null, f.to ?? null];
}

function metaBreaker(m: MetaRow): BreakerState {
  return { failures: m.breaker_failures, probeAt: m.breaker_probe_at, cooldownMs: m.breaker_cooldown_ms };
}

function rowToDelivery(r: DeliveryRow): DeliveryView {
  return {
    source: r.source,
    deliveryId: r.delivery_id,
    kind: r.kind,
    subject: r.subject,
    receivedAt: r.received_at,
    state: r.state as DeliveryState,
    windowAttempts: r.window_attempts,
    nextAt: r.next_at,
    firstPlannedAt: r.first_planned_at,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
    enqueuedAt: r.enqueued_at,
    updatedAt: r.updated_at,
  };
}

function rowToAttempt(r: AttemptRow): AttemptView {
  return {
    n: r.n,
    startedAt: r.started_at,
    durationMs: r.duration_ms,
    status: r.status,
    responseHeaders: r.response_headers === null ? null : (JSON.parse(r.response_headers) as Record<string, string>),
    responseBody: r.response_body,
    errorClass: r.error_class as ErrorClass | null,
    error: r.error,
    outcome: r.outcome as AttemptView["outcome"],
  };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function forEachBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
