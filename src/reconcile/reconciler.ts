import { DurableObject } from "cloudflare:workers";
import { refusesClient } from "../lib/client-refusal";
import { reportIssue } from "../alerts/report";
import type { CentrePointApiConfig } from "../config/schemas";
import { listConfigs, loadConfig } from "../config/store";
import type { Bindings } from "../env";
import { log } from "../lib/log";
import { migrate } from "../lib/migrate";
import { err, ok, type Result } from "../lib/result";
import { apiErrorStatus, createCentrePointApi, describeApiError, type CentrePointApi, type CentrePointApiOptions } from "../providers/centrepoint/api/client";
import { getWebhookRegistration } from "../providers/centrepoint/api/endpoints";
import { type ApiCallCount, countApiCall, readApiCalls } from "../pull/api-calls";
import { gatewayFor } from "../pull/gateway";
import { correlateCompletion } from "../pull/correlate";
import { bodyLimit } from "../config/limits";
import { compareRegistration, type RegistrationCheck } from "./registration";
import { advanceRun, finished, PAGES_PER_INVOCATION } from "./run";
import { RECONCILER_MIGRATIONS } from "./schema";
import { resolveCredentials } from "../providers/centrepoint/api/settings";
import {
  lastStartedAt,
  listReports,
  readMeta,
  readTotals,
  runningRun,
  startRun,
  writeMeta,
  type ReconcileReport,
  type RunFailure,
  type RunTrigger,
} from "./store";

export type { ReconcileReport, RegistrationCheck };

/** Slack of the "due" comparison, ms: a run started a little after its Cron tick is due again on the tick `everyMinutes` later. */
const DUE_SLACK_MS = 60_000;
/** Longest a single API call of a run may wait for Retry-After or the budget before the run pauses instead, ms. */
const CALL_MAX_WAIT_MS = 10_000;
/** Wait before asking again when the shared budget's object could not be reached, ms. */
const BUDGET_UNREACHABLE_WAIT_MS = 1_000;

/** What a source's reconciliation looks like now: the newest run, the newest finished one, the registration check, totals. */
export interface ReconcileSummary {
  latest: ReconcileReport | null;
  lastFinished: ReconcileReport | null;
  lastSuccessAt: number | null;
  registration: RegistrationCheck | null;
  totals: ReturnType<typeof readTotals>;
  /** This source's reconciliation requests to CentrePoint's API, by method, endpoint and status. */
  apiCalls: ApiCallCount[];
}

/** What the scheduler's tick did. */
export type TickOutcome = "started" | "running" | "not_due" | "off";

/**
 * Reconciliation of one source (Durable Object named by source id) against CentrePoint's delivery
 * history, and its registration check. The class holds state and schedule only: the run's logic is
 * src/reconcile/run.ts, its rows store.ts, its pure core history.ts and registration.ts. One run at
 * a time; a run is cut into invocations of at most PAGES_PER_INVOCATION pages and continued by
 * the one alarm, so progress survives eviction. The API token lives in isolate memory only.
 */
export class Reconciler extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  /** The invocation in progress in this instance (RPC calls and the alarm interleave at awaits). */
  private busy: Promise<void> | null = null;
  /** Pages one invocation reads; a field so tests can cut runs shorter. */
  protected pagesPerInvocation = PAGES_PER_INVOCATION;
  /** How the API client waits (Retry-After, backoff); a seam so tests need not sleep. */
  protected sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, RECONCILER_MIGRATIONS));
  }

  /**
   * Runs a reconciliation now (manual): starts one, or continues the run in progress, for one
   * invocation, and answers its report (`complete: false` when it continues in the background).
   */
  async run(source: string): Promise<ReconcileReport> {
    this.remember(source);
    if (!runningRun(this.sql)) {
      const block = await this.block(source);
      // Re-checked after the await: another call may have started a run meanwhile.
      if (!runningRun(this.sql)) this.begin("manual", block.ok ? block.value : null);
    }
    await this.invokeOnce();
    return this.latest()!;
  }

  /** The scheduler's tick (Cron Trigger at `scheduledTime`, epoch ms): starts a run when the source is due; the alarm does the work. */
  async tick(source: string, scheduledTime: number): Promise<TickOutcome> {
    this.remember(source);
    if (runningRun(this.sql)) {
      // A run in progress always has its alarm; re-arm one that was lost.
      if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now());
      return "running";
    }
    const block = await this.block(source);
    if (!block.ok || block.value.reconcile.everyMinutes === 0) return "off";
    const last = lastStartedAt(this.sql);
    if (last !== null && scheduledTime - last < block.value.reconcile.everyMinutes * 60_000 - DUE_SLACK_MS) return "not_due";
    if (runningRun(this.sql)) return "running"; // started by another call during the await
    this.begin("scheduled", block.value);
    await this.ctx.storage.setAlarm(Date.now());
    return "started";
  }

  /** Reads the webhook registration now, compares it, keeps the result; an error when it could not be read. */
  async checkRegistration(source: string): Promise<Result<RegistrationCheck, RegistrationCheck | { config: string }>> {
    this.remember(source);
    const block = await this.block(source, false);
    if (!block.ok) return err({ config: block.error });
    const creds = resolveCredentials(this.env, block.value);
    if (!creds.ok) return err({ config: creds.error });
    const check = await this.registrationWith(this.api(source, block.value, creds.value), source, block.value);
    return check.error === null ? ok(check) : err(check);
  }

  /** Reports, newest first (the run in progress first). */
  async reports(limit: number): Promise<ReconcileReport[]> {
    return listReports(this.sql, limit);
  }

  /** The latest state for pages and metrics; never calls CentrePoint. */
  async summary(): Promise<ReconcileSummary> {
    const [latest] = listReports(this.sql, 1);
    const lastFinished = latest?.complete ? latest : (listReports(this.sql, 2)[1] ?? null);
    return {
      latest: latest ?? null,
      lastFinished,
      lastSuccessAt: readMeta<number>(this.sql, "last_success_at"),
      registration: readMeta<RegistrationCheck>(this.sql, "registration"),
      totals: readTotals(this.sql),
      apiCalls: readApiCalls(this.sql),
    };
  }

  /** Continues the run in progress. Never throws: an unexpected error ends the run as failed (logged). */
  override async alarm(): Promise<void> {
    await this.invokeOnce();
  }

  /** One invocation of the run in progress (none if there is none); waits for one already going instead of starting a second. */
  private async invokeOnce(): Promise<void> {
    if (this.busy) return this.busy;
    this.busy = this.invoke().finally(() => (this.busy = null));
    return this.busy;
  }

  private async invoke(): Promise<void> {
    const run = runningRun(this.sql);
    if (!run) return;
    const source = readMeta<string>(this.sql, "source") ?? "";
    const end = (failure: RunFailure) => void finished({ storage: this.ctx.storage, sourceId: source, now: Date.now }, failure);
    try {
      const block = await this.block(source);
      if (!block.ok) return end({ kind: "config", message: block.error });
      const creds = resolveCredentials(this.env, block.value);
      if (!creds.ok) return end({ kind: "config", message: creds.error });
      const api = this.api(source, block.value, creds.value);
      if (run.invocations === 0) await this.registrationWith(api, source, block.value);
      const ledger = this.env.LEDGER.get(this.env.LEDGER.idFromName(source));
      const result = await advanceRun({
        storage: this.ctx.storage,
        sourceId: source,
        block: block.value,
        api,
        ledger,
        targets: () => listConfigs(this.env.CONFIG, "target"),
        now: Date.now,
        maxBodyBytes: bodyLimit(this.env.MAX_BODY_BYTES),
        pagesPerInvocation: this.pagesPerInvocation,
        correlate: (input) => correlateCompletion(this.env, source, block.value, input),
      });
      if (result.kind === "continue") await this.ctx.storage.setAlarm(result.at);
    } catch (e) {
      log("error", "reconciliation failed unexpectedly", { source, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      if (runningRun(this.sql)) end({ kind: "internal", message: `internal error: ${e instanceof Error ? e.message : String(e)}` });
    }
    const report = this.latest();
    if (report?.id === run.id && report.complete) this.ctx.waitUntil(reportRunIssues(this.env, source, report));
  }

  /** Starts a run; without a usable block it starts and ends at once as failed, so the failure is reported. */
  private begin(trigger: RunTrigger, block: CentrePointApiConfig | null): void {
    const now = Date.now();
    this.ctx.storage.transactionSync(() => startRun(this.sql, trigger, now, now - (block?.reconcile.lookbackHours ?? 0) * 3_600_000));
  }

  /** The latest report (the run in progress, or the newest finished one). */
  private latest(): ReconcileReport | null {
    return listReports(this.sql, 1)[0] ?? null;
  }

  /**
   * The source's `centrepoint` block, or why there is none usable. A disabled source has none for a
   * run (`forRun`): the schedule skips it and a run in progress ends at its next step.
   */
  private async block(source: string, forRun = true): Promise<Result<CentrePointApiConfig, string>> {
    const loaded = await loadConfig(this.env.CONFIG, "source", source);
    if (loaded.state === "missing") return err(`there is no source document "${source}"`);
    if (loaded.state === "invalid") return err(`the source document is invalid (${loaded.errors.map((e) => `${e.path} ${e.message}`).join("; ")})`);
    if (!loaded.config.centrepoint) return err("the source document has no centrepoint block");
    if (forRun && !loaded.config.enabled) return err("the source is disabled (enabled: false); it is not reconciled until it is enabled again");
    return ok(loaded.config.centrepoint);
  }

  /**
   * An API client of this source: the Worker's fetch, the isolate's token cache, and the budget its
   * API client shares with every source using it (the CentrePointGateway, src/pull/gateway.ts; asked
   * before every request). Requests are counted by endpoint and status.
   */
  private api(
    source: string,
    block: CentrePointApiConfig,
    creds: Pick<CentrePointApiOptions, "apiUrl" | "authUrl" | "clientId" | "clientSecret">,
  ): CentrePointApi {
    const shared = gatewayFor(this.env, block);
    return createCentrePointApi({
      ...creds,
      fetch: (input, init) => fetch(input, init),
      now: Date.now,
      sleep: (ms) => this.sleep(ms),
      random: Math.random,
      budget: {
        acquire: () => shared.acquire(source).catch(() => ({ ok: false as const, error: { retryAfterMs: BUDGET_UNREACHABLE_WAIT_MS } })),
      },
      limits: { maxWaitMs: CALL_MAX_WAIT_MS },
      onRequest: (m) => countApiCall(this.sql, m),
    });
  }

  /** Reads the registration, compares it, and keeps the result. */
  private async registrationWith(api: CentrePointApi, source: string, block: CentrePointApiConfig): Promise<RegistrationCheck> {
    const checkedAt = Date.now();
    const reg = await getWebhookRegistration(api, block.studyId, block.webhookId);
    let check: RegistrationCheck;
    if (reg.ok) {
      const comparison = compareRegistration({
        sourceId: source,
        registration: reg.value,
        publicUrl: this.env.RELAY_PUBLIC_URL,
        targets: await listConfigs(this.env.CONFIG, "target"),
      });
      check = {
        checkedAt,
        ...comparison,
        registration: { url: reg.value.url, isDisabled: reg.value.isDisabled, events: reg.value.webhookEvents.map((e) => e.name) },
        error: null,
        upstream: null,
      };
    } else {
      const e = reg.error;
      check = {
        checkedAt,
        expectedUrl: null,
        problems: [],
        notes: [],
        registration: null,
        error: describeApiError(e),
        upstream: { status: apiErrorStatus(e), endpoint: e.endpoint },
      };
    }
    writeMeta(this.sql, "registration", check);
    if (check.error !== null || check.problems.length > 0)
      log("warn", "centrepoint registration check found problems", { source, problems: check.problems.map((p) => p.code), error: check.error });
    return check;
  }

  /** Keeps the source id (the alarm needs it). */
  private remember(source: string): void {
    if (readMeta<string>(this.sql, "source") !== source) writeMeta(this.sql, "source", source);
  }
}

/** A finished run's issues, opened at once (docs/alerting.md); the one-minute evaluation resolves them when a later run is clean. */
async function reportRunIssues(env: Bindings, source: string, r: ReconcileReport): Promise<void> {
  const object = { source };
  if (r.outcome === "failed") {
    if (refusesClient(r.upstream))
      await reportIssue(env, { condition: "centrepoint_auth_failed", object, summary: `CentrePoint answered ${r.upstream.status} to ${r.upstream.endpoint}` });
    await reportIssue(env, { condition: "reconcile_failed", object, summary: `reconciliation failed: ${r.firstError ?? r.failure ?? "see the source page"}` });
  }
  if (r.backfilled > 0)
    await reportIssue(env, {
      condition: "reconcile_backfilled",
      object,
      summary: `${r.backfilled} deliver${r.backfilled === 1 ? "y" : "ies"} CentrePoint logged never arrived (backfilled by the last reconciliation)`,
      count: r.backfilled,
    });
}
