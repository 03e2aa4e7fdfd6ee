import { DurableObject } from "cloudflare:workers";
import type { EnrichFact } from "../config/schemas";
import { loadConfig } from "../config/store";
import { reportIssue } from "../alerts/report";
import type { Bindings } from "../env";
import { forEachBounded } from "../lib/bounded";
import { log } from "../lib/log";
import { migrate } from "../lib/migrate";
import { err, ok, type Result } from "../lib/result";
import { HOLD_AT } from "../ledger/types";
import { backoffDelayMs } from "../lib/backoff";
import type { HandoffItem } from "../outbox/types";
import { gatewayFor, type LookupError, PAUSED_RECHECK_MS } from "./gateway";
import { envelopeData, type FoundFacts, keysOf, type StoredEnrichment } from "./facts";
import {
  dueJobs,
  type FileRecord,
  insertJob,
  type EnrichmentJob,
  jobCounts,
  nextJobAt,
  pruneJobs,
  readFile,
  readJob,
  recordFiles,
  restartJob,
  saveAttempt,
} from "./jobs";
import {
  ADDRESS_REQUESTS_PER_MINUTE,
  addressKey,
  admitRequest,
  type CachedUrl,
  cachedUrl,
  cacheUrl,
  type FileDownload,
  LINK_REQUESTS_PER_MINUTE,
  type LimitWindow,
  linkKey,
  reuseUntil,
} from "./link-limits";
import { PULL_HANDOFF, type PullSpec } from "./plan";
import { alarmRunner } from "./alarm";
import { PULLER_MIGRATIONS } from "./schema";

/** Lookups of one job are retried for at most this long (a target that holds its events waits at least this long before a retry is needed). */
export const MAX_JOB_MS = 72 * 3_600_000;
/** Backoff between attempts of a job: full jitter, 5 s doubling to 5 min. */
export const ENRICH_RETRY = { baseDelayMs: 5_000, maxDelayMs: 300_000 } as const;
/** Jobs run at once. */
const CONCURRENCY = 6;
/** Jobs taken per batch, and batches per alarm run. */
const BATCH = 50;
const MAX_BATCHES = 20;
/** One alarm run keeps taking batches for at most this long. */
const RUN_BUDGET_MS = 25_000;
/** Wait before trying again when the ledger did not take a result. */
const RETRY_SOON_MS = 30_000;

/** An item the ledger hands off to the Puller: an event and its job (src/pull/plan.ts). */
export type PullItem = HandoffItem & { pull?: PullSpec };

/**
 * The pull side of one source (Durable Object named by source id; docs/pull.md). The ledger hands it
 * each delivery that some target wants enriched, or that triggers an automatic raw-data request,
 * through a hand-off row (`@pull`) handed off at least once. It looks up the enrichment once per
 * delivery with retries and backoff (the CentrePointGateway of the source's API client makes the
 * calls, under its budget and cache), stores each attempt's result beside the record in the
 * ledger, which hands off the targets that waited for it, and passes raw-data triggers to the
 * client's queue. "One alarm, many rows": every job is a row with a due time.
 *
 * A disabled source (`enabled: false`) pauses its Puller: no lookup is made, pending jobs neither
 * run nor use up their retries, and once the source is enabled again they go on, their give-up
 * times moved by the time they waited.
 */
export class Puller extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  private readonly jobs = alarmRunner(
    this.ctx.storage,
    "puller alarm",
    () => this.run(),
    () => this.nextWake(),
  );
  /** File links' request windows, by link and by address (memory only; src/pull/link-limits.ts). */
  private readonly linkWindows = new Map<string, LimitWindow>();
  /** Download URLs by file, until shortly before they expire (memory only: a bearer credential of CentrePoint's). */
  private readonly urls = new Map<string, CachedUrl>();
  /** Download URL requests in flight, by file. */
  private readonly urlsInFlight = new Map<string, Promise<Result<string, LookupError>>>();
  /** While paused, the alarm comes no earlier than this (epoch ms; in memory: a fresh instance looks again at once). */
  private pausedUntil = 0;
  /** [0, 1) for backoff jitter; a seam so tests can make retries land on time. */
  protected random = Math.random;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, PULLER_MIGRATIONS));
  }

  /**
   * Takes the ledger's hand-off (the `@pull` row): a job per item that wants facts (idempotent on
   * the delivery id), and its raw-data trigger passed to the client's queue (idempotent there).
   * Throws when the trigger could not be queued, so the ledger hands it off again later.
   */
  async acceptHandoff(targetId: string, items: PullItem[]): Promise<{ inserted: number }> {
    if (targetId !== PULL_HANDOFF) throw new Error(`the Puller takes ${PULL_HANDOFF} hand-offs, not ${targetId}`);
    const now = Date.now();
    let inserted = 0;
    for (const item of items) {
      this.remember(item.source);
      const spec = item.pull;
      if (!spec) continue;
      const data = envelopeData(item.envelope);
      const keys = keysOf(item.kind, data);
      if (spec.facts.length > 0) {
        const giveUpAt = Math.min(spec.until >= HOLD_AT ? Number.MAX_SAFE_INTEGER : spec.until, now + MAX_JOB_MS);
        if (this.ctx.storage.transactionSync(() => insertJob(this.sql, item.deliveryId, keys, spec.facts, giveUpAt, now))) inserted++;
      }
      if (spec.autoRequest !== null) {
        const gateway = await this.gateway(item.source);
        if (!gateway.ok) {
          log("warn", "raw-data request not made", { source: item.source, deliveryId: item.deliveryId, error: gateway.error.reason });
          continue;
        }
        const text = (v: unknown) => (typeof v === "string" ? v : null);
        await gateway.value.requestRaw(item.source, {
          deliveryId: item.deliveryId,
          studyId: keys.studyId,
          subjectId: keys.subjectId,
          fileFormat: spec.autoRequest,
          minEventTimestamp: text(data?.minEventTimestamp),
          maxEventTimestamp: text(data?.maxEventTimestamp),
        });
      }
    }
    if (inserted > 0) await this.arm();
    return { inserted };
  }

  /**
   * Looks the enrichment up again from scratch ("retry enrichment": the subject cache is bypassed),
   * retrying for up to MAX_JOB_MS. Returns the job, or null when there is none (never planned, or
   * settled more than SETTLED_KEPT_MS ago).
   */
  async retry(deliveryId: string): Promise<EnrichmentJob | null> {
    const now = Date.now();
    if (!restartJob(this.sql, deliveryId, now + MAX_JOB_MS, now)) return null;
    await this.arm();
    return readJob(this.sql, deliveryId);
  }

  /** A delivery's job, or null. */
  async job(deliveryId: string): Promise<EnrichmentJob | null> {
    return readJob(this.sql, deliveryId);
  }

  /** A data file a job listed (what a file link may name), or null. */
  async file(fileId: string): Promise<FileRecord | null> {
    return readFile(this.sql, fileId);
  }

  /**
   * A request of a valid link to `fileId` issued to `target`, from `ip` (src/routes/files.ts has
   * checked the signature, the expiry, the source and the target). In order: the limits of the link
   * and of the address (a refusal asks nothing); the file must be one a job listed; a download URL
   * of the file handed out less than its reuse time ago is handed out again; otherwise one is asked
   * for (concurrent requests of one file share the call). Limits and URLs live in this object's
   * memory only.
   */
  async download(fileId: string, target: string, ip: string | null): Promise<FileDownload> {
    const now = Date.now();
    const admitted = admitRequest(
      this.linkWindows,
      [
        { key: addressKey(ip), limit: ADDRESS_REQUESTS_PER_MINUTE },
        { key: linkKey(target, fileId), limit: LINK_REQUESTS_PER_MINUTE },
      ],
      now,
    );
    if (!admitted.ok) return { kind: "limited", limit: admitted.key.startsWith("address ") ? "address" : "link", retryAfterMs: admitted.retryAfterMs };
    const file = readFile(this.sql, fileId);
    if (!file) return { kind: "unknown" };
    const cached = cachedUrl(this.urls, fileId, now);
    if (cached !== null) return { kind: "redirect", url: cached, deliveryId: file.deliveryId, reused: true };
    let pending = this.urlsInFlight.get(fileId);
    if (!pending) {
      pending = this.fetchUrl(fileId).finally(() => this.urlsInFlight.delete(fileId));
      this.urlsInFlight.set(fileId, pending);
    }
    const got = await pending;
    if (!got.ok)
      return {
        kind: "failed",
        deliveryId: file.deliveryId,
        status: got.error.status,
        reason: got.error.reason,
        retryAfterMs: got.error.retryAfterMs,
        budget: got.error.status === null && got.error.retryAfterMs !== null,
      };
    return { kind: "redirect", url: got.value, deliveryId: file.deliveryId, reused: false };
  }

  /** Asks the source's API client for a download URL of a file and keeps it for reuse. */
  private async fetchUrl(fileId: string): Promise<Result<string, LookupError>> {
    const source = this.source();
    const gateway = await this.gateway(source);
    if (!gateway.ok) return gateway;
    const got = await gateway.value.downloadUrl(source, fileId);
    if (!got.ok) return got;
    cacheUrl(this.urls, fileId, { url: got.value.url, reuseUntil: reuseUntil(Date.now(), got.value.expiresAt) }, Date.now());
    return ok(got.value.url);
  }

  /** Pending jobs and settled ones by outcome. */
  async summary(): Promise<ReturnType<typeof jobCounts>> {
    return jobCounts(this.sql);
  }

  /** Runs the due jobs in bounded batches, prunes, re-arms. Never throws. */
  override async alarm(): Promise<void> {
    return this.jobs.run();
  }

  private async run(): Promise<void> {
    if (await this.paused(this.source())) {
      this.pausedUntil = Date.now() + PAUSED_RECHECK_MS;
      pruneJobs(this.sql, Date.now());
      return;
    }
    this.pausedUntil = 0;
    const started = Date.now();
    for (let i = 0; i < MAX_BATCHES && Date.now() - started < RUN_BUDGET_MS; i++) {
      const due = dueJobs(this.sql, Date.now(), BATCH);
      if (due.length === 0) break;
      await forEachBounded(due, CONCURRENCY, (job) => this.attempt(job));
    }
    pruneJobs(this.sql, Date.now());
  }

  /**
   * Whether the source is disabled. The first run that finds it disabled notes when (meta
   * `paused_at`); the first that finds it enabled again moves every pending job's give-up time by
   * the pause, so a paused job never gives up for having waited.
   */
  private async paused(source: string): Promise<boolean> {
    const loaded = await loadConfig(this.env.CONFIG, "source", source);
    const disabled = loaded.state === "valid" && !loaded.config.enabled;
    const since = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'paused_at'").toArray()[0];
    const now = Date.now();
    if (disabled) {
      if (!since) {
        this.sql.exec("INSERT INTO meta (key, value) VALUES ('paused_at', ?)", String(now));
        log("info", "enrichment paused: the source is disabled", { source, pending: jobCounts(this.sql).pending });
      }
      return true;
    }
    if (since) {
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE jobs SET give_up_at = MIN(give_up_at + ?, ?) WHERE state = 'pending'", now - Number(since.value), Number.MAX_SAFE_INTEGER);
        this.sql.exec("DELETE FROM meta WHERE key = 'paused_at'");
      });
      log("info", "enrichment resumed: the source is enabled again", { source, pausedMs: now - Number(since.value) });
    }
    return false;
  }

  /** When the alarm is next needed: the earliest pending job, not before the pause's next look. */
  private nextWake(): number | null {
    const at = nextJobAt(this.sql);
    return at === null ? null : Math.max(at, this.pausedUntil);
  }

  /** One attempt of a job: looks up the facts not found yet, stores the result in the ledger, settles or schedules the next attempt. */
  private async attempt(job: EnrichmentJob): Promise<void> {
    const source = this.source();
    const found: FoundFacts = { ...job.result?.found };
    const errors: StoredEnrichment["errors"] = {};
    let retryable = false;
    let retryAfterMs = 0;
    let refusedStatus: number | null = null;
    const gateway = await this.gateway(source);
    for (const fact of job.facts) {
      if (found[fact] !== undefined) continue;
      const got = gateway.ok ? await this.lookup(gateway.value, source, fact, job) : gateway;
      if (got.ok) {
        Object.assign(found, { [fact]: got.value });
        continue;
      }
      errors[fact] = got.error.reason;
      if (got.error.refusedClient) refusedStatus = got.error.status;
      if (got.error.retryable) {
        retryable = true;
        retryAfterMs = Math.max(retryAfterMs, got.error.retryAfterMs ?? 0);
      }
    }
    const now = Date.now();
    const attempts = job.attempts + 1;
    const settled = !retryable || now >= job.giveUpAt;
    if (retryable && settled) for (const f of Object.keys(errors) as EnrichFact[]) errors[f] = `${errors[f]} (gave up after ${attempts} attempts)`;
    const result: StoredEnrichment = { found, errors, settled, attempts, updatedAt: now };
    try {
      await this.env.LEDGER.get(this.env.LEDGER.idFromName(source)).storeEnrichment(job.deliveryId, result);
    } catch (e) {
      // The result is kept here; the next attempt looks up only what is still missing and stores again.
      log("warn", "enrichment not stored; retrying", { source, deliveryId: job.deliveryId, error: e instanceof Error ? e.message : String(e) });
      saveAttempt(this.sql, job.deliveryId, { ...result, settled: false }, { settled: false, at: now + RETRY_SOON_MS }, now);
      return;
    }
    if (settled) {
      const n = job.facts.filter((f) => found[f] !== undefined).length;
      const outcome = n === job.facts.length ? "complete" : n > 0 ? "partial" : "failed";
      saveAttempt(this.sql, job.deliveryId, result, { settled: true, outcome }, now);
      log(outcome === "complete" ? "info" : "warn", "enrichment settled", {
        source,
        deliveryId: job.deliveryId,
        outcome,
        attempts,
        missing: Object.keys(errors),
      });
      if (outcome !== "complete") {
        // docs/alerting.md: opened at once; CentrePoint refusing the client is its own condition.
        const refused = refusedStatus !== null;
        this.ctx.waitUntil(
          reportIssue(this.env, {
            condition: refused ? "centrepoint_auth_failed" : "enrichment_failed",
            object: { source },
            summary: refused
              ? `CentrePoint answered ${refusedStatus} to the enrichment lookups`
              : `enrichment of ${job.deliveryId} ${outcome}: ${Object.entries(errors)
                  .map(([f, e]) => `${f}: ${e}`)
                  .join("; ")}`,
            count: 1,
          }),
        );
      }
      return;
    }
    const delay = Math.max(1_000, backoffDelayMs(ENRICH_RETRY, attempts, this.random), retryAfterMs);
    saveAttempt(this.sql, job.deliveryId, result, { settled: false, at: Math.min(now + delay, Math.max(job.giveUpAt, now + 1_000)) }, now);
  }

  /** One fact of a job, through the gateway; a datafiles lookup records the files (links may name them). */
  private async lookup(gateway: ReturnType<typeof gatewayFor>, source: string, fact: EnrichFact, job: EnrichmentJob): Promise<Result<unknown, LookupError>> {
    const k = job.keys;
    switch (fact) {
      case "subject":
        return gateway.subject(source, k.studyId!, k.subjectId!, job.fresh);
      case "upload":
        return gateway.upload(source, k.studyId!, k.subjectId!, k.uploadId!);
      case "datafiles": {
        const files = await gateway.dataFiles(source, k.trackingId!);
        if (files.ok) recordFiles(this.sql, job.deliveryId, k.trackingId!, files.value, Date.now());
        return files;
      }
    }
  }

  /** The CentrePointGateway of the source's API client, or why there is none (a final error: nothing to look up with). */
  private async gateway(source: string): Promise<Result<ReturnType<typeof gatewayFor>, LookupError>> {
    const loaded = await loadConfig(this.env.CONFIG, "source", source);
    if (loaded.state !== "valid" || !loaded.config.centrepoint)
      return err({
        reason: loaded.state === "valid" ? "the source has no centrepoint block (no API client to look up with)" : `the source document is ${loaded.state}`,
        retryable: false,
        retryAfterMs: null,
        status: null,
        refusedClient: false,
      });
    return ok(gatewayFor(this.env, loaded.config.centrepoint));
  }

  /** Arms the alarm at the earliest pending job unless it is armed earlier (a running alarm re-arms itself). */
  private async arm(): Promise<void> {
    if (this.jobs.running()) return;
    const next = nextJobAt(this.sql);
    if (next === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  private source(): string {
    return (this.sql.exec("SELECT value FROM meta WHERE key = 'source'").toArray()[0]?.value as string | undefined) ?? "";
  }

  private remember(source: string): void {
    this.sql.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('source', ?)", source);
  }
}
