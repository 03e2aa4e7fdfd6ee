import { DurableObject } from "cloudflare:workers";
import type { TrendPoint } from "../lib/trends";
import type { AlertChannel } from "../config/alert-schema";
import type { TargetConfig } from "../config/schemas";
import { type Loaded, loadConfig } from "../config/store";
import type { Bindings } from "../env";
import { forEachBounded } from "../lib/bounded";
import { reportIssue } from "../alerts/report";
import { bumpCounters, type Deltas } from "../lib/counters";
import { log } from "../lib/log";
import { meterSql, type Usage } from "../lib/meter";
import { migrate } from "../lib/migrate";
import { err, ok, type Result } from "../lib/result";
import { fragment, joinFragments } from "../lib/sql";
import { auditHolds, auditPruning } from "./system-audit";
import { breakerAllows, breakerStatus, CLOSED_BREAKER } from "./breaker";
import { isChannelOutbox, loadChannel, resolveChannel } from "./channel";
import { resolveTarget } from "./attempt";
import { stateCounter } from "./counters";
import { pruneIfDue } from "./retention";
import { batchReady, dueRows, nextWake } from "./schedule";
import { askForPlans } from "./plans";
import { OUTBOX_MIGRATIONS } from "./schema";
import { logDelivered, payloadOf, type Run, type RunIO, sendBatch, sendOne } from "./send";
import {
  applyFilter,
  claim,
  complete,
  type CompletionPolicy,
  expireIfSpent,
  hold,
  insertDispatches,
  noteError,
  recordConfigFailure,
  recoverInterrupted,
  release,
  replan,
  saveBreaker,
  setOrdered,
} from "./transitions";
import type { HandoffItem } from "./types";
import {
  breakerOf,
  type DispatchDetail,
  type DispatchFilter,
  type DispatchView,
  filterWhere,
  getDispatch,
  listDispatches,
  MAX_REPLAY,
  type OutboxHealth,
  outboxHealth,
  type OutboxMetrics,
  outboxMetrics,
  outboxTrend,
  type PayloadRow,
  readMeta,
  seqOf,
} from "./views";

/**
 * Dispatches claimed per batch at most, per unit of the target's concurrency, and at least
 * MIN_BATCH. A batch costs two storage commits (its claim before the fetches, its completions
 * after them), so larger batches mean fewer commits per event; memory is bounded by bytes too.
 */
export const BATCH_PER_SLOT = 8;
/** Smallest batch. */
export const MIN_BATCH = 50;
/** Wait before re-running after an unexpected error in the alarm. */
const ERROR_RETRY_MS = 30_000;
/** One alarm invocation keeps taking batches while rows are due, for at most this long (then it re-arms). */
const RUN_BUDGET_MS = 30_000;
/** Batches per alarm invocation at most. */
const MAX_BATCHES = 200;
/**
 * While a batch runs the alarm is a watchdog: should the instance die mid-batch, it fires at most
 * an attempt's timeout plus WATCHDOG_REFRESH_MS plus this margin after the last sign of life, and
 * the next instance recovers the claimed rows. It is pushed forward every WATCHDOG_REFRESH_MS (one
 * alarm write each), so the wait after a crash does not grow with the batch.
 */
export const WATCHDOG_MARGIN_MS = 15_000;
export const WATCHDOG_REFRESH_MS = 10_000;
/** Items per acceptHandoff call at most (a ledger hands off far fewer). */
const MAX_HANDOFF_ITEMS = 1000;

/**
 * One target's queue of dispatches ("one alarm, many rows"): every (source, delivery id) handed
 * to this target is a row (transitions.ts has its states); the single alarm is armed at the
 * earliest due row (schedule.ts) and sends a bounded batch. SQLite is the truth: a batch is
 * claimed, each attempt written `in_flight`, before any of its fetches, and each is completed
 * after its answer, so an eviction loses nothing and an interrupted attempt is visible and
 * retried. Delivery is at-least-once; receivers dedupe on `webhook-id`. The read model is views.ts.
 */
export class Outbox extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  /** Billing units of this instance (lib/meter.ts). */
  private readonly meter: ReturnType<typeof meterSql>;
  /** What the sends of a run use (send.ts). */
  private readonly io: RunIO;
  /** True while this instance's alarm is sending; `delivering` rows are stale otherwise. */
  private running = false;
  /** Whether this instance has recovered the rows an earlier instance left `delivering` (once per instance). */
  private recovered = false;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.meter = meterSql(ctx.storage.sql);
    this.sql = this.meter.sql;
    this.io = { sql: this.sql, transaction: (f) => this.ctx.storage.transactionSync(f), flush: (run, policy) => this.flush(run, policy) };
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, OUTBOX_MIGRATIONS));
  }

  /** Adds dispatches for this target. Idempotent on (source, deliveryId): a repeated item changes nothing. Arms the alarm. */
  async acceptHandoff(targetId: string, items: HandoffItem[]): Promise<{ inserted: number; duplicates: number }> {
    this.meter.usage.requests++;
    if (items.length > MAX_HANDOFF_ITEMS) throw new RangeError(`acceptHandoff takes at most ${MAX_HANDOFF_ITEMS} items`);
    const meta = readMeta(this.sql);
    if (meta.target_id !== null && meta.target_id !== targetId) throw new Error(`outbox of ${meta.target_id} got items for ${targetId}`);
    const now = Date.now();
    const inserted = this.ctx.storage.transactionSync(() => {
      if (meta.target_id === null) this.sql.exec("UPDATE meta SET target_id = ?", targetId);
      return insertDispatches(this.sql, items, now, meta.held_by === "gone" ? { reason: meta.held_reason } : null);
    });
    // New rows are due now. A running alarm takes them in its next batch; otherwise wake it: now, or
    // at the probe time while the breaker is open (woken earlier it would only find it may send
    // nothing, once per event). Rows handed off during a 410 pause are held: resume() wakes it.
    const breaker = breakerOf(meta);
    const wakeAt = meta.held_by === "gone" ? null : breakerStatus(breaker, now) === "open" ? breaker.probeAt! : now;
    if (inserted > 0 && !this.running && wakeAt !== null) {
      const current = await this.ctx.storage.getAlarm();
      if (current === null || current > wakeAt) await this.ctx.storage.setAlarm(wakeAt);
    }
    return { inserted, duplicates: items.length - inserted };
  }

  /** One dispatch with its most recent attempts (oldest first), or null when this target never had it. */
  async getDispatch(source: string, deliveryId: string): Promise<DispatchDetail | null> {
    return getDispatch(this.sql, source, deliveryId);
  }

  /** The payload of one dispatch as this target gets it (enrichment included), for a preview; null when this target never had it. */
  async payload(source: string, deliveryId: string): Promise<HandoffItem | null> {
    const r = this.sql.exec<PayloadRow>("SELECT * FROM dispatches WHERE source = ? AND delivery_id = ?", source, deliveryId).toArray()[0];
    return r ? payloadOf(r) : null;
  }

  /** A page of dispatches, newest enqueued first; pass the returned cursor for the next page. */
  async list(filter: DispatchFilter & { cursor?: string }): Promise<{ items: DispatchView[]; cursor: string | null }> {
    return listDispatches(this.sql, filter);
  }

  /** Counts, backlog age, hold, breaker and last outcomes of this target. */
  async health(): Promise<OutboxHealth> {
    return outboxHealth(this.sql, Date.now());
  }

  /** Hourly dispatches delivered, failed attempts and latency of the last `hours` hours (lib/trends.ts). */
  async trends(hours: number): Promise<TrendPoint[]> {
    return outboxTrend(this.sql, hours, Date.now());
  }

  /** Attempts by outcome and error class, the delivered latency histogram, and this instance's billing units (hot path: acceptHandoff, alarm). */
  async metrics(): Promise<OutboxMetrics & { usage: Usage }> {
    const m = outboxMetrics(this.sql);
    this.meter.settle();
    return { ...m, usage: { ...this.meter.usage } };
  }

  /**
   * Sends one dispatch again. Idempotent: only a delivered, dead or not_wanted one goes back to
   * pending, with a fresh window (attempt history kept); the target's filter and transform as they
   * are now decide what is sent.
   */
  async replay(source: string, deliveryId: string): Promise<{ found: boolean; replayed: boolean }> {
    const seq = seqOf(this.sql, source, deliveryId);
    if (seq === null) return { found: false, replayed: false };
    const replayed = replan(this.sql, fragment("seq = ? AND state IN ('delivered', 'dead', 'not_wanted')", seq), Date.now()) > 0;
    if (replayed) await this.arm();
    return { found: true, replayed };
  }

  /**
   * replay() for up to `limit` (≤ 1000) delivered or dead dispatches matching the filter (state
   * defaults to both; not_wanted ones when asked for), oldest first. `remaining` counts the matching
   * ones left for another call.
   */
  async replayWhere(filter: DispatchFilter): Promise<{ replayed: number; remaining: number }> {
    if (filter.state !== undefined && filter.state !== "dead" && filter.state !== "delivered" && filter.state !== "not_wanted")
      return { replayed: 0, remaining: 0 };
    const limit = Math.min(Math.max(filter.limit, 1), MAX_REPLAY);
    const states = fragment(filter.state === "not_wanted" ? "state = 'not_wanted'" : "state IN ('delivered', 'dead')");
    const replayable = joinFragments([filterWhere(filter), states]);
    const chosen = fragment(`seq IN (SELECT seq FROM dispatches WHERE ${replayable.sql} ORDER BY seq LIMIT ?)`, ...replayable.params, limit);
    const replayed = replan(this.sql, chosen, Date.now());
    const remaining = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM dispatches WHERE ${replayable.sql}`, ...replayable.params).one().n;
    if (replayed > 0) await this.arm();
    return { replayed, remaining };
  }

  /** The target is (re-)enabled: held dispatches go back to pending with a fresh window, the 410 pause is lifted and the breaker closed. Idempotent. */
  async resume(): Promise<{ resumed: number }> {
    const resumed = this.ctx.storage.transactionSync(() => {
      saveBreaker(this.sql, CLOSED_BREAKER);
      return release(this.sql, Date.now());
    });
    await this.arm();
    return { resumed };
  }

  /**
   * Sends a bounded batch of due dispatches and re-arms for the rest. Never throws (the platform
   * retries a throwing alarm only a few times): errors become recorded state and a re-armed alarm.
   * Safe to run twice: only `pending` rows are claimed.
   */
  override async alarm(): Promise<void> {
    this.meter.usage.requests++;
    if (this.running) return; // alarms do not overlap; this guards against a re-entrant call
    this.running = true;
    let notBefore = 0;
    try {
      const was = readMeta(this.sql);
      const started = Date.now();
      for (let i = 0; i < MAX_BATCHES && Date.now() - started < RUN_BUDGET_MS; i++) if ((await this.run()) === 0) break;
      await auditHolds(this.env, this.sql, was);
      const prunedWith = pruneIfDue(this.sql, (f) => this.ctx.storage.transactionSync(f), Date.now());
      if (prunedWith) await auditPruning(this.env, this.sql, prunedWith, Date.now());
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log("error", "outbox alarm failed", { target: readMeta(this.sql).target_id, error: message });
      noteError(this.sql, `internal: ${message}`, Date.now());
      notBefore = Date.now() + ERROR_RETRY_MS;
    } finally {
      this.running = false;
    }
    try {
      await this.arm(notBefore);
    } catch (e) {
      log("error", "outbox could not re-arm its alarm", { target: readMeta(this.sql).target_id, error: String(e) });
    }
  }

  /** One batch: reads the configuration, holds or releases, claims due rows and sends them. Returns how many it sent. */
  private async run(): Promise<number> {
    const now = Date.now();
    // Rows an earlier instance left `delivering` (it died mid-attempt); while this one lives, only its own runs make them.
    const recovered = this.recovered ? [] : this.ctx.storage.transactionSync(() => recoverInterrupted(this.sql, now));
    this.recovered = true;
    let meta = readMeta(this.sql);
    const targetId = meta.target_id;
    if (targetId === null) return 0;
    if (meta.held_by === "gone") {
      hold(this.sql, "gone", "paused", now); // rows replayed or handed off while paused
      return 0;
    }
    // An alert channel's outbox (channel.ts) reads its channel document; a target's, its target document.
    const loaded = isChannelOutbox(targetId) ? await loadChannel(this.env, targetId) : await loadConfig(this.env.CONFIG, "target", targetId);
    // After an await, state may have changed (resume, a hand-off, replay): read it again.
    meta = readMeta(this.sql);
    if (meta.held_by === "gone") return 0;
    if (loaded.state === "valid" && !isChannelOutbox(targetId)) {
      this.ctx.storage.transactionSync(() => applyFilter(this.sql, loaded.config, now));
      await askForPlans(this.ctx.storage, this.sql, this.env, targetId);
    }
    const usable = usableConfig(targetId, loaded);
    if (!usable.ok) {
      hold(this.sql, "config", usable.error, now);
      return 0;
    }
    const config = usable.value;
    // An attempt lost with its instance counts against the retry window like a failed one, so an
    // event whose attempts keep dying with the instance still ends dead instead of looping.
    for (const seq of recovered) expireIfSpent(this.sql, seq, config.retry, now, Math.random);
    if (meta.ordered !== (config.ordered ? 1 : 0)) this.ctx.storage.transactionSync(() => setOrdered(this.sql, config.ordered));
    if (meta.retention_days !== config.retentionDays) this.sql.exec("UPDATE meta SET retention_days = ?", config.retentionDays);
    if (meta.batch_max !== (config.batch?.maxEvents ?? null) || meta.batch_wait_ms !== (config.batch?.maxWaitMs ?? null))
      this.sql.exec("UPDATE meta SET batch_max = ?, batch_wait_ms = ?", config.batch?.maxEvents ?? null, config.batch?.maxWaitMs ?? null);
    const allowHttp = this.env.ALLOW_HTTP_TARGETS === "true";
    const channel = (loaded as { channel?: AlertChannel }).channel;
    const resolved = channel ? resolveChannel(channel, this.env, allowHttp, targetId) : resolveTarget(config, this.env, allowHttp, targetId);
    if (!resolved.ok) {
      // Never send without the configured auth or signature: record why on the due rows, then hold.
      this.ctx.storage.transactionSync(() => {
        for (const row of dueRows(this.sql, now, MIN_BATCH, config.ordered)) recordConfigFailure(this.sql, row.seq, resolved.error, now);
        hold(this.sql, "config", resolved.error, now);
      });
      return 0;
    }
    if (meta.held_by === "config") this.ctx.storage.transactionSync(() => release(this.sql, now));

    const allowance = breakerAllows(breakerOf(meta), now);
    if (allowance === "none") return 0;
    // rateLimit: one send per slot of 60 s / perMinute, the slot kept in meta (so retries, replays and a new instance share it).
    const interval = config.rateLimit ? Math.ceil(60_000 / config.rateLimit.perMinute) : null;
    if (interval === null && meta.rate_next_at !== null) this.sql.exec("UPDATE meta SET rate_next_at = NULL");
    if (interval !== null && meta.rate_next_at !== null && meta.rate_next_at > now) return 0;
    // Batch mode: one request of up to maxEvents (a probe or a rate-limit slot is one request too).
    const batch = config.batch
      ? config.batch.maxEvents
      : allowance === "probe" || interval !== null
        ? 1
        : Math.max(MIN_BATCH, config.concurrency * BATCH_PER_SLOT);
    const due = dueRows(this.sql, now, batch, config.ordered);
    if (due.length === 0) return 0;
    if (config.batch && !batchReady(due, config.batch.maxEvents, config.batch.maxWaitMs, now)) return 0;
    const claimed = this.ctx.storage.transactionSync(() => {
      if (interval !== null) this.sql.exec("UPDATE meta SET rate_next_at = ?", now + interval);
      return claim(
        this.sql,
        due.map((r) => r.seq),
        now,
      );
    });
    // Watchdog: should this instance die mid-batch, the alarm fires again and recovers the rows. Its
    // first write and the claim's are made durable together, before the first fetch goes out (output gate).
    const watchdog = () => this.ctx.storage.setAlarm(Date.now() + config.timeoutMs + WATCHDOG_REFRESH_MS + WATCHDOG_MARGIN_MS);
    await watchdog();
    const refresh = setInterval(() => void watchdog().catch(() => undefined), WATCHDOG_REFRESH_MS);
    const run: Run = {
      targetId,
      target: resolved.value,
      policy: { retry: config.retry, breaker: config.breaker, probe: allowance === "probe", random: Math.random },
      paused: false,
      breaker: breakerOf(meta),
      done: [],
      delivered: [],
    };
    const sends = due.flatMap((row) => (claimed.has(row.seq) ? [{ row, attemptN: claimed.get(row.seq)! }] : []));
    try {
      if (config.batch) await sendBatch(this.io, sends, run);
      else await forEachBounded(sends, config.concurrency, ({ row, attemptN }) => sendOne(this.io, row, attemptN, run));
    } finally {
      clearInterval(refresh);
      this.flush(run);
      logDelivered(run);
    }
    // A probe goes alone, a 410 stops the run, a rate-limited send waits for its next slot: the next batch waits for the alarm.
    return allowance === "probe" || run.paused || interval !== null ? 0 : sends.length;
  }

  /**
   * Writes the finished attempts of a batch in one transaction. Nothing is written between the
   * batch's fetches, so none of them waits for a storage commit (the output gate); an instance that
   * dies before the flush leaves those attempts in_flight, and they are recovered and sent again
   * (at-least-once: the receiver may see them twice).
   */
  private flush(run: Run, policy: CompletionPolicy = run.policy): void {
    if (run.done.length === 0) return;
    const batch = run.done.splice(0);
    const died = this.ctx.storage.transactionSync(() => {
      const deltas: Deltas = new Map();
      for (const c of batch) complete(this.sql, c, policy, deltas);
      bumpCounters(this.sql, deltas);
      return deltas.get(stateCounter("dead")) ?? 0;
    });
    // A dead letter opens its issue at once (docs/alerting.md); no row of this object is read or written for it.
    if (died > 0)
      this.ctx.waitUntil(
        reportIssue(this.env, {
          condition: "dead_letters",
          object: { target: run.targetId },
          summary: `${died} dispatch${died === 1 ? "" : "es"} went dead`,
          count: died,
        }),
      );
  }

  /**
   * Arms the single alarm at the next wake (not before `notBefore`). While a run is sending, it
   * only ever moves the alarm earlier, so the run's watchdog stays in place.
   */
  private async arm(notBefore = 0): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    const next = nextWake(this.sql, readMeta(this.sql), Date.now(), this.running);
    if (next === null) {
      if (!this.running && current !== null) await this.ctx.storage.deleteAlarm();
      return;
    }
    const want = Math.max(next, notBefore);
    if (current === null || want < current || (!this.running && want !== current)) await this.ctx.storage.setAlarm(want);
  }
}

/** The target's configuration when it can be sent to, else why not. */
function usableConfig(targetId: string, loaded: Loaded<TargetConfig>): Result<TargetConfig, string> {
  const what = isChannelOutbox(targetId) ? "alert channel" : "target";
  if (loaded.state === "missing") return err(`${what} document ${isChannelOutbox(targetId) ? targetId : `target:${targetId}`} is missing`);
  if (loaded.state === "invalid") return err(`${what} document is invalid: ${loaded.errors.map((e) => `${e.path} ${e.message}`).join("; ")}`);
  return loaded.config.enabled ? ok(loaded.config) : err(`${what} is disabled`);
}
