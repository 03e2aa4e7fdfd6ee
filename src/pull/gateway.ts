import { bumpCounter } from "../lib/counters";
import { DurableObject } from "cloudflare:workers";
import type { CentrePointApiConfig } from "../config/schemas";
import { loadConfig } from "../config/store";
import { reportIssue } from "../alerts/report";
import type { Bindings } from "../env";
import { log } from "../lib/log";
import { migrate } from "../lib/migrate";
import { err, ok, type Result } from "../lib/result";
import { backoffDelayMs } from "../lib/backoff";
import { type BudgetState, budgetUsage, emptyBudgetState, tryAcquire } from "../providers/centrepoint/api/budget";
import { type ApiError, apiErrorStatus, type CentrePointApi, createCentrePointApi, describeApiError } from "../providers/centrepoint/api/client";
import { refusesClient } from "../lib/client-refusal";
import {
  createRawActivityRequest,
  getDownloadUrl,
  getRawActivityRequest,
  getSubject,
  getUpload,
  isActiveLimitError,
  listDataFiles,
} from "../providers/centrepoint/api/endpoints";
import { isActiveRequestStatus } from "../providers/centrepoint/api/schemas";
import { resolveCredentials } from "../providers/centrepoint/api/settings";
import { type ApiCallCount, countApiCall, readApiCalls } from "./api-calls";
import { type DataFileFact, dataFileFacts, type SubjectFact, subjectFact, type UploadFact, uploadFact } from "./facts";
import {
  activeCount,
  dueQueued,
  duePolls,
  enqueueTrigger,
  LIMIT_RETRY_MS,
  LOST_AFTER_MS,
  markActive,
  markFinished,
  markPolled,
  markRequeued,
  markSubmitting,
  MAX_ACTIVE_REQUESTS,
  nextQueueWake,
  noteCompletionDelivery,
  pruneRequests,
  type RawRequestView,
  type RawTrigger,
  recoverSubmitting,
  reportedRequests,
  requestByTracking,
  requestCounts,
  requestsOfDelivery,
  requestsOfSource,
} from "./requests";
import { alarmRunner } from "./alarm";
import { CLIENT_MIGRATIONS } from "./schema";
import { pruneSubjects, readSubject, SUBJECT_TTL_MS, writeSubject } from "./subjects";

/** Why a lookup failed: a sentence (no secret, no body), whether trying again later may help, and when. */
export interface LookupError {
  reason: string;
  retryable: boolean;
  retryAfterMs: number | null;
  /** CentrePoint's status, when it answered. */
  status: number | null;
  /** CentrePoint refused the relay's API client itself (lib/client-refusal.ts): centrepoint_auth_failed rather than a failed lookup. */
  refusedClient: boolean;
}

/** What the pull side's API client may do within one call: no retries and no waiting inside the call (the callers retry durably). */
const PULL_LIMITS = { maxRetries: 0, maxWaitMs: 0 } as const;
/** Backoff of a submission that failed for a retryable reason. */
const SUBMIT_RETRY = { baseDelayMs: 30_000, maxDelayMs: 30 * 60_000 } as const;
/** While a source is disabled, its Puller's jobs and its queued raw-data requests wait; they are looked at again this often. */
export const PAUSED_RECHECK_MS = 5 * 60_000;
/** Polls and submissions per alarm run at most. */
const PER_RUN = MAX_ACTIVE_REQUESTS;

/** The fields of a `centrepoint` block that name its API client. */
export type ClientBlock = Pick<CentrePointApiConfig, "authUrl" | "apiUrl" | "clientIdEnv" | "clientSecretEnv">;

/**
 * The Durable Object name of a source's API client: the auth server, the API, and the *names* of
 * both client secrets (never their values). Blocks sharing one object name the same secrets, so hold
 * the same credentials for the same hosts: what one reads (the subject cache) the others could read
 * themselves. Names, not values, so rotating a secret keeps the object and its queue of raw-data requests.
 */
export function clientName(block: ClientBlock): string {
  const base = (url: string) => url.replace(/\/+$/, "").toLowerCase();
  return `${base(block.authUrl)} ${base(block.apiUrl)} ${block.clientIdEnv} ${block.clientSecretEnv}`;
}

/** The CentrePointGateway stub of a source's `centrepoint` block. */
export function gatewayFor(env: Bindings, block: ClientBlock) {
  return env.CP_CLIENT.get(env.CP_CLIENT.idFromName(clientName(block)));
}

/** A lookup error from an API error: 5xx, network, 429 and auth are retried later; 404 and other refusals are final. */
export function lookupErrorOf(e: ApiError): LookupError {
  const reason = describeApiError(e);
  const status = apiErrorStatus(e);
  const refusedClient = refusesClient({ status, endpoint: e.endpoint });
  switch (e.kind) {
    case "rate_limited":
      return { reason, retryable: true, retryAfterMs: e.retryAfterMs, status, refusedClient };
    case "network":
      return { reason, retryable: true, retryAfterMs: null, status, refusedClient };
    case "auth":
      return { reason, retryable: true, retryAfterMs: null, status, refusedClient };
    case "http":
      return { reason, retryable: e.status >= 500 || e.status === 408, retryAfterMs: null, status, refusedClient };
    case "invalid_response":
    case "invalid_request":
      return { reason, retryable: false, retryAfterMs: null, status, refusedClient };
  }
}

/**
 * What every source sharing one CentrePoint V3 API client shares (Durable Object named by
 * `clientName`): the rate budget (≤ 450 requests a minute, fair shares per source: api/budget.ts,
 * held in memory), the subject cache (SUBJECT_TTL_MS; lookups of one subject in flight are
 * coalesced), and the durable queue of raw-data requests (requests.ts: at most 10 active, the rest
 * submitted as slots free). Lookups never retry or wait inside a call: callers retry durably.
 * Tokens stay in isolate memory (api/token.ts). See docs/pull.md.
 */
export class CentrePointGateway extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  /** Requests granted in the last minute, per source (in memory: an instance is evicted only after tens of idle seconds). */
  private budget: BudgetState = emptyBudgetState();
  /** Subject lookups in flight, by study/subject: concurrent askers share one request. */
  private readonly inflight = new Map<string, Promise<Result<SubjectFact, LookupError>>>();
  /** The queue's alarm: polls, submissions, pruning. */
  private readonly queue = alarmRunner(
    this.ctx.storage,
    "centrepoint client queue",
    () => this.pump(),
    () => nextQueueWake(this.sql),
  );

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, CLIENT_MIGRATIONS));
  }

  /** One request of `source` under the shared budget (callers making their own API calls ask before each, e.g. the Reconciler). */
  async acquire(source: string): Promise<Result<void, { retryAfterMs: number }>> {
    return this.take(source);
  }

  /** Requests granted in the current window, in total and per source. */
  async budgetUsage(): Promise<{ total: number; bySource: Record<string, number> }> {
    return budgetUsage(this.budget, Date.now());
  }

  /** A subject's identifiers and time zone: from the cache (24 h), or one lookup shared by everyone asking meanwhile. `fresh` skips the cache. */
  async subject(source: string, studyId: string, subjectId: string, fresh = false): Promise<Result<SubjectFact, LookupError>> {
    const key = JSON.stringify([studyId, subjectId]);
    if (!fresh) {
      const cached = readSubject(this.sql, studyId, subjectId, Date.now() - SUBJECT_TTL_MS);
      if (cached) {
        bumpCounter(this.sql, "subjects:hit");
        return ok(cached);
      }
    }
    const pending = this.inflight.get(key);
    if (pending) {
      bumpCounter(this.sql, "subjects:coalesced");
      return pending;
    }
    bumpCounter(this.sql, "subjects:lookup");
    const lookup = (async (): Promise<Result<SubjectFact, LookupError>> => {
      const api = await this.api(source);
      if (!api.ok) return api;
      const r = await getSubject(api.value, studyId, subjectId);
      if (!r.ok) return err(lookupErrorOf(r.error));
      const fact = subjectFact(r.value);
      writeSubject(this.sql, studyId, subjectId, fact, Date.now());
      return ok(fact);
    })().finally(() => this.inflight.delete(key));
    this.inflight.set(key, lookup);
    return lookup;
  }

  /** An upload's device and files. */
  async upload(source: string, studyId: string, subjectId: string, uploadId: string): Promise<Result<UploadFact, LookupError>> {
    const api = await this.api(source);
    if (!api.ok) return api;
    const r = await getUpload(api.value, studyId, subjectId, uploadId);
    return r.ok ? ok(uploadFact(r.value)) : err(lookupErrorOf(r.error));
  }

  /** The data files of a completed raw-data request. */
  async dataFiles(source: string, trackingId: string): Promise<Result<DataFileFact[], LookupError>> {
    const api = await this.api(source);
    if (!api.ok) return api;
    const r = await listDataFiles(api.value, trackingId);
    return r.ok ? ok(dataFileFacts(r.value)) : err(lookupErrorOf(r.error));
  }

  /**
   * A fresh short-lived download URL of a data file and CentrePoint's expiry of it (null when not
   * given); refused by the budget before any request, the error's status is null. Secret-like: the caller redirects to it and never logs or stores it. Asked under the
   * budget key `files:<source>`, a share of its own: a source's file links cannot use up the share
   * of its enrichment and reconciliation.
   */
  async downloadUrl(source: string, dataFileId: string): Promise<Result<{ url: string; expiresAt: string | null }, LookupError>> {
    let asked = false;
    const api = await this.api(source, `files:${source}`, () => (asked = true));
    if (!api.ok) return api;
    const r = await getDownloadUrl(api.value, dataFileId);
    if (r.ok) return ok({ url: r.value.downloadUrl, expiresAt: r.value.expirationDateUtc ?? null });
    // Refused by the budget before any request: status null, so the caller knows CentrePoint was not asked.
    return err(asked ? lookupErrorOf(r.error) : { ...lookupErrorOf(r.error), status: null });
  }

  /** Queues the raw-data requests of a raw_processing.completed event (idempotent per subject, format and range); returns them. */
  async requestRaw(source: string, trigger: RawTrigger): Promise<RawRequestView[]> {
    const views = this.ctx.storage.transactionSync(() => enqueueTrigger(this.sql, source, trigger, Date.now()));
    for (const v of views) if (v.state === "invalid") log("warn", "raw-data request not made", { source, deliveryId: trigger.deliveryId, error: v.error });
    await this.wake();
    return views;
  }

  /**
   * A data_retrieval_complete webhook for `trackingId` arrived (delivery `deliveryId`): the request
   * ends and its slot frees. Returns the triggering delivery, or null when the request is not one of
   * this client's queue.
   */
  async completion(
    trackingId: string,
    outcome: { status: "completed" | "error"; errorMessage: string | null; deliveryId: string },
  ): Promise<{ source: string; deliveryId: string; part: number; parts: number } | null> {
    const r = requestByTracking(this.sql, trackingId);
    if (!r) return null;
    const ended = this.ctx.storage.transactionSync(() => {
      const changed = markFinished(this.sql, r.id, outcome.status, Date.now(), { status: outcome.status, error: outcome.errorMessage });
      noteCompletionDelivery(this.sql, r.id, outcome.deliveryId);
      return changed;
    });
    if (ended) {
      if (outcome.status === "error")
        log("warn", "raw-data request ended in error", { source: r.source, trackingId: r.trackingId, error: outcome.errorMessage });
      await this.wake();
    }
    return { source: r.source, deliveryId: r.triggerDeliveryId, part: r.part, parts: r.parts };
  }

  /** Requests a delivery triggered, or whose completion it reported. */
  async requestsOf(source: string, deliveryId: string): Promise<RawRequestView[]> {
    return requestsOfDelivery(this.sql, source, deliveryId);
  }

  /** Requests of a source, newest first. */
  async requestsOfSource(source: string, filter: { state?: string; limit: number }): Promise<RawRequestView[]> {
    return requestsOfSource(this.sql, source, filter);
  }

  /** Queue counts, recently reported requests, API calls by endpoint and status, subject cache counters. Never calls CentrePoint. */
  async summary(): Promise<ClientSummary> {
    const counters = this.sql.exec<{ name: string; value: number }>("SELECT name, value FROM counters WHERE name LIKE 'subjects:%'").toArray();
    const get = (name: string) => counters.find((c) => c.name === name)?.value ?? 0;
    return {
      requests: requestCounts(this.sql),
      reported: reportedRequests(this.sql, 20),
      apiCalls: readApiCalls(this.sql),
      subjects: { hits: get("subjects:hit"), lookups: get("subjects:lookup"), coalesced: get("subjects:coalesced") },
    };
  }

  /** Polls due requests, submits queued ones while slots are free, prunes, re-arms. Never throws. */
  override async alarm(): Promise<void> {
    return this.queue.run();
  }

  private async pump(): Promise<void> {
    const now = Date.now();
    this.ctx.storage.transactionSync(() => recoverSubmitting(this.sql, now));
    for (const r of duePolls(this.sql, now, PER_RUN)) await this.poll(r);
    await this.submitFree();
    pruneRequests(this.sql, Date.now());
    pruneSubjects(this.sql, Date.now());
  }

  /**
   * Submits due queued requests while fewer than 10 hold a slot, one at a time in queue order. A
   * request of a disabled source is not submitted: it waits in the queue, looked at again every
   * PAUSED_RECHECK_MS, until the source is enabled.
   */
  private async submitFree(): Promise<void> {
    for (const r of dueQueued(this.sql, Date.now(), Math.min(PER_RUN, MAX_ACTIVE_REQUESTS - activeCount(this.sql)))) {
      if (await this.disabled(r.source)) {
        markRequeued(this.sql, r.id, Date.now() + PAUSED_RECHECK_MS, "the source is disabled: not submitted until it is enabled again");
        continue;
      }
      this.ctx.storage.transactionSync(() => markSubmitting(this.sql, r.id, Date.now()));
      const created = await this.submit(r);
      const now = Date.now();
      if (created.ok) {
        markActive(this.sql, r.id, created.value.id, created.value.status, now);
        log("info", "raw-data request submitted", { source: r.source, trackingId: created.value.id, part: r.part, parts: r.parts });
        continue;
      }
      if (created.error === "active_limit") {
        // Ten are active at CentrePoint (some made outside this queue): wait for a slot.
        markRequeued(this.sql, r.id, now + LIMIT_RETRY_MS, "CentrePoint already has 10 active requests of this client; waiting for a slot");
        break;
      }
      const error = created.error;
      if (error.retryable) {
        markRequeued(this.sql, r.id, now + Math.max(error.retryAfterMs ?? 0, 1_000 + backoffDelayMs(SUBMIT_RETRY, r.tries + 1, Math.random)), error.reason);
      } else {
        markFinished(this.sql, r.id, "failed", now, { error: error.reason });
        log("warn", "raw-data request refused by CentrePoint", { source: r.source, deliveryId: r.triggerDeliveryId, error: error.reason });
        this.reportRawFailure(r.source, `raw-data request refused by CentrePoint: ${error.reason}`, error.refusedClient);
      }
    }
  }

  /** POSTs one queued request; `active_limit` when CentrePoint already has 10 of this client's. */
  private async submit(r: RawRequestView): Promise<Result<{ id: string; status: string }, LookupError | "active_limit">> {
    const api = await this.api(r.source);
    if (!api.ok) return api;
    const created = await createRawActivityRequest(api.value, {
      fileFormat: r.fileFormat as RawTrigger["fileFormat"],
      studyId: r.studyId,
      subjectId: r.subjectId,
      beginTimestampUtc: r.beginUtc,
      endTimestampUtc: r.endUtc,
    });
    if (created.ok) return ok(created.value);
    return err(isActiveLimitError(created.error) ? "active_limit" : lookupErrorOf(created.error));
  }

  /** Asks CentrePoint how an active request is doing; a request that ended frees its slot. */
  private async poll(r: RawRequestView): Promise<void> {
    const api = await this.api(r.source);
    const got = api.ok ? await getRawActivityRequest(api.value, r.trackingId!) : null;
    const now = Date.now();
    if (got?.ok && !isActiveRequestStatus(got.value.status)) {
      const state = got.value.status === "completed" ? "completed" : "error";
      markFinished(this.sql, r.id, state, now, { status: got.value.status, error: got.value.errorMessage });
      if (state === "error") {
        log("warn", "raw-data request ended in error (found by polling)", { source: r.source, trackingId: r.trackingId, error: got.value.errorMessage });
        this.reportRawFailure(r.source, `raw-data request ${r.trackingId} ended in error: ${got.value.errorMessage ?? "no message"}`);
      }
    } else if (got && !got.ok && got.error.kind === "http" && got.error.status === 404) {
      markFinished(this.sql, r.id, "lost", now, { error: "CentrePoint does not know this request (404)" });
      log("warn", "raw-data request lost", { source: r.source, trackingId: r.trackingId });
      this.reportRawFailure(r.source, `raw-data request ${r.trackingId} lost: CentrePoint does not know it (404)`);
    } else if (r.submittedAt !== null && now - r.submittedAt >= LOST_AFTER_MS) {
      markFinished(this.sql, r.id, "lost", now, { error: `still ${r.upstreamStatus ?? "active"} 24 h after submission; the relay stopped waiting for it` });
      log("warn", "raw-data request lost", { source: r.source, trackingId: r.trackingId });
      this.reportRawFailure(r.source, `raw-data request ${r.trackingId} lost: still ${r.upstreamStatus ?? "active"} 24 h after submission`);
    } else if (markPolled(this.sql, r, got?.ok ? got.value.status : (r.upstreamStatus ?? "unknown"), now)) {
      log("warn", "raw-data request overdue", { source: r.source, trackingId: r.trackingId, submittedAt: r.submittedAt });
    }
  }

  /** Opens raw_request_failed (or centrepoint_auth_failed when CentrePoint refused the client) for `source` at once, off this object's path (docs/alerting.md). */
  private reportRawFailure(source: string, summary: string, refusedClient = false): void {
    const condition = refusedClient ? "centrepoint_auth_failed" : "raw_request_failed";
    this.ctx.waitUntil(reportIssue(this.env, { condition, object: { source }, summary, count: 1 }));
  }

  /** Arms the alarm now unless it is armed earlier (or running: the run re-arms). */
  private async wake(): Promise<void> {
    if (this.queue.running()) return;
    const current = await this.ctx.storage.getAlarm();
    const now = Date.now();
    if (current === null || current > now) await this.ctx.storage.setAlarm(now);
  }

  /** One request of `source` under the shared budget. */
  private take(source: string): Result<void, { retryAfterMs: number }> {
    const r = tryAcquire(this.budget, source, Date.now());
    this.budget = r.state;
    return r.allowed ? ok(undefined) : err({ retryAfterMs: r.waitMs });
  }

  /** Whether the source's document is valid and disabled (`enabled: false`). */
  private async disabled(source: string): Promise<boolean> {
    const loaded = await loadConfig(this.env.CONFIG, "source", source);
    return loaded.state === "valid" && !loaded.config.enabled;
  }

  /** An API client for one source's block: its URLs and secrets, this object's budget (under `budgetKey`, default the source), counted calls. */
  private async api(source: string, budgetKey = source, onRequest?: () => void): Promise<Result<CentrePointApi, LookupError>> {
    const loaded = await loadConfig(this.env.CONFIG, "source", source);
    const final = (reason: string): Result<never, LookupError> => err({ reason, retryable: false, retryAfterMs: null, status: null, refusedClient: false });
    if (loaded.state === "missing") return final(`there is no source document "${source}"`);
    if (loaded.state === "invalid") return final("the source document is invalid");
    if (!loaded.config.centrepoint) return final("the source has no centrepoint block (no API client to look up with)");
    if (!loaded.config.enabled)
      return err({ reason: "the source is disabled (enabled: false)", retryable: true, retryAfterMs: PAUSED_RECHECK_MS, status: null, refusedClient: false });
    const creds = resolveCredentials(this.env, loaded.config.centrepoint);
    if (!creds.ok) return err({ reason: creds.error, retryable: true, retryAfterMs: null, status: null, refusedClient: false });
    return ok(
      createCentrePointApi({
        ...creds.value,
        fetch: (input, init) => fetch(input, init),
        now: Date.now,
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        random: Math.random,
        budget: { acquire: async () => this.take(budgetKey) },
        limits: PULL_LIMITS,
        onRequest: (m) => {
          onRequest?.();
          countApiCall(this.sql, m);
        },
      }),
    );
  }
}

/** What a client's state looks like for the overview and metrics. */
export interface ClientSummary {
  requests: ReturnType<typeof requestCounts>;
  reported: RawRequestView[];
  apiCalls: ApiCallCount[];
  subjects: { hits: number; lookups: number; coalesced: number };
}
