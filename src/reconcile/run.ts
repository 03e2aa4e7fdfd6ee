/**
 * One invocation of a reconciliation run: up to `pagesPerInvocation` pages of CentrePoint's
 * delivery history, each row classified (history.ts), the page's new delivery ids looked up in the
 * source's ledger in one batch, every missing delivery backfilled exactly as ingress records a
 * pushed one (ledger/delivery-record.ts) with provenance "centrepoint-history", and the page's
 * progress committed in one transaction. I/O is injected (the API client, the ledger, the targets,
 * the clock), so this is plain code the Durable Object calls.
 *
 * Contracts:
 * - Nothing already in the ledger is recorded again, so nothing is sent again: a delivery id is
 *   backfilled only when the ledger does not have it, and never when retention removed its record
 *   (the ledger keeps removed ids longer than any look-back: ledger/retention.ts).
 * - Crash-safe and resumable: a backfill is marked `backfilling` before the ledger is asked, and the
 *   page's offset advances only after its rows are applied; a page read again (after an invocation
 *   died) finds its ids known and asks the ledger again for the unconfirmed ones.
 * - The order of the history is never assumed: ids are deduplicated across pages by the run's items.
 */
import type { CentrePointApiConfig, TargetConfig } from "../config/schemas";
import type { Listed } from "../config/store";
import { log } from "../lib/log";
import type { RecordInput, RecordResult } from "../ledger/types";
import type { KnownDelivery } from "../ledger/queries";
import { apiErrorStatus, apiPath, describeApiError, MAX_PAGE_LIMIT, SCOPE, type CentrePointApi } from "../providers/centrepoint/api/client";
import { ENDPOINT } from "../providers/centrepoint/api/endpoints";
import { buildDeliveryRecord } from "../ledger/delivery-record";
import { historyRowSchema, readHistoryRow, type HistoryRow } from "./history";
import {
  addItem,
  countInvocation,
  countPause,
  finishRun,
  itemStates,
  type PageProgress,
  recordPage,
  runningRun,
  setItemState,
  type ReconcileReport,
  type RunFailure,
  type RunProgress,
} from "./store";

/** History pages one invocation reads at most (each at most 100 rows). */
export const PAGES_PER_INVOCATION = 10;
/** History pages one run reads at most (100,000 rows); past that the run ends with an error. */
export const MAX_PAGES_PER_RUN = 1000;
/** Pause between two invocations of one run, ms: at most 4 invocations (≤ 44 API requests) per source and minute. */
export const CONTINUE_AFTER_MS = 15_000;
/** Waits for CentrePoint's rate limit one run accepts before it ends as failed. */
export const MAX_PAUSES_PER_RUN = 20;

/** What the ledger must answer for reconciliation (the Ledger Durable Object's RPC methods). */
export interface LedgerPort {
  knownDeliveries(ids: string[]): Promise<KnownDelivery[]>;
  record(input: RecordInput): Promise<RecordResult>;
}

/** Everything one invocation uses. */
export interface InvocationContext {
  storage: DurableObjectStorage;
  sourceId: string;
  block: CentrePointApiConfig;
  api: CentrePointApi;
  ledger: LedgerPort;
  /** Target documents, for the backfills' plans (read once per invocation, only when something is backfilled). */
  targets: () => Promise<readonly Listed<TargetConfig>[]>;
  now: () => number;
  /** The ingress body limit (MAX_BODY_BYTES): a larger history body is an error, as it would have been a 413. */
  maxBodyBytes: number;
  pagesPerInvocation: number;
  /** Names the triggering delivery in a backfilled data_retrieval_complete of the relay's own request (src/pull/correlate.ts). */
  correlate?: (input: RecordInput) => Promise<RecordInput>;
}

/** What the invocation leaves: the run ended (its report), or it continues at `at` (epoch ms). */
export type InvocationResult = { kind: "finished"; report: ReconcileReport } | { kind: "continue"; at: number };

/** Reads and reconciles up to `pagesPerInvocation` pages of the run in progress. */
export async function advanceRun(ctx: InvocationContext): Promise<InvocationResult> {
  const sql = ctx.storage.sql;
  countInvocation(sql);
  const path = apiPath(ENDPOINT.webhookHistory, { studyId: ctx.block.studyId, webhookId: ctx.block.webhookId });
  for (let i = 0; i < Math.max(1, ctx.pagesPerInvocation); i++) {
    const run = runningRun(sql);
    if (!run) throw new Error("advanceRun: no run in progress");
    const page = await ctx.api.page(path, historyRowSchema, { scope: SCOPE.centrePoint, offset: run.nextOffset, limit: MAX_PAGE_LIMIT });
    if (!page.ok) {
      const e = page.error;
      if (e.kind === "rate_limited" && run.pauses < MAX_PAUSES_PER_RUN) {
        countPause(sql);
        log("warn", "reconciliation paused for CentrePoint's rate limit", { source: ctx.sourceId, retryAfterMs: e.retryAfterMs });
        return { kind: "continue", at: ctx.now() + Math.max(1_000, e.retryAfterMs) };
      }
      return finished(ctx, { kind: "upstream", message: describeApiError(e), upstream: { status: apiErrorStatus(e), endpoint: e.endpoint } });
    }
    const applied = await applyPage(ctx, run, page.value.items);
    const errors = page.value.note ? [...applied.errors, page.value.note] : applied.errors;
    ctx.storage.transactionSync(() => recordPage(sql, { ...applied, errors, nextOffset: page.value.nextOffset, totalCount: page.value.totalCount }));
    if (page.value.done) return finished(ctx);
    if (run.pages + 1 >= MAX_PAGES_PER_RUN) {
      return finished(ctx, {
        kind: "internal",
        message: `stopped after ${MAX_PAGES_PER_RUN} pages (the bound of one run) at offset ${page.value.nextOffset} of ${page.value.totalCount}; shorten lookbackHours or ask ActiGraph about the history's size`,
      });
    }
  }
  return { kind: "continue", at: ctx.now() + CONTINUE_AFTER_MS };
}

/** Ends the run in progress (a failure makes it `failed`) and logs its counts. */
export function finished(ctx: Pick<InvocationContext, "storage" | "sourceId" | "now">, failure?: RunFailure): InvocationResult {
  const report = ctx.storage.transactionSync(() => finishRun(ctx.storage.sql, ctx.now(), failure));
  if (!report) throw new Error("finished: no run in progress");
  const { id, outcome, pages, scanned, matched, knownPruned, backfilled, recordedButFailedAtCentrePoint, skipped, errors, firstError } = report;
  log(outcome === "failed" ? "error" : outcome === "errors" ? "warn" : "info", "reconciliation finished", {
    source: ctx.sourceId,
    run: id,
    outcome,
    pages,
    scanned,
    matched,
    knownPruned,
    backfilled,
    recordedButFailedAtCentrePoint,
    skipped,
    errors,
    firstError,
  });
  return { kind: "finished", report };
}

/** What a page adds to the run, besides where the next page starts. */
type Applied = Omit<PageProgress, "nextOffset" | "totalCount"> & { errors: string[] };

/**
 * Classifies a page's rows and backfills its missing deliveries; the run's items are written as it
 * goes (a backfill is marked before the ledger is asked). Returns the page's errors and counts.
 */
async function applyPage(ctx: InvocationContext, run: RunProgress, items: readonly unknown[]): Promise<Applied> {
  const sql = ctx.storage.sql;
  const rows: HistoryRow[] = items.map((raw) => readHistoryRow(raw, run.lookbackFrom, ctx.maxBodyBytes));
  const errors: string[] = [];
  const applied: Applied = {
    scanned: rows.length,
    outsideLookback: rows.filter((r) => r.kind === "outside").length,
    delivered: [...new Set(rows.flatMap((r) => ("delivered" in r && r.delivered ? [r.deliveryId] : [])))],
    errors,
  };
  // The first row of each delivery id on this page (the body of one delivery is the same in each of its rows).
  const firstRows = new Map<string, Extract<HistoryRow, { kind: "skip" | "delivery" }>>();
  for (const r of rows) {
    if (r.kind === "unreadable") errors.push(r.error);
    else if (r.kind !== "outside" && !firstRows.has(r.deliveryId)) firstRows.set(r.deliveryId, r);
  }
  const states = itemStates(sql, [...firstRows.keys()]);
  const toLookUp: string[] = [];
  for (const [id, r] of firstRows) {
    const state = states.get(id);
    if (r.kind === "skip") {
      if (state === undefined) addItem(sql, id, "skipped");
    } else if (state === undefined || state === "backfilling") toLookUp.push(id);
  }
  if (toLookUp.length === 0) return applied;

  const known = new Map((await ctx.ledger.knownDeliveries(toLookUp)).map((k) => [k.deliveryId, k]));
  let targets: readonly Listed<TargetConfig>[] | null = null;
  for (const id of toLookUp) {
    const wasStarted = states.get(id) === "backfilling";
    const k = known.get(id);
    if (k?.pruned) {
      // Recorded once, removed by retention since: known, and never recorded or sent again.
      if (wasStarted) setItemState(sql, id, "pruned");
      else addItem(sql, id, "pruned");
      continue;
    }
    const provenance = k?.provenance;
    if (provenance !== undefined && provenance !== null) {
      // Known before this run, or (a backfill marked but not confirmed) recorded by it.
      const state = wasStarted && provenance === "centrepoint-history" ? "backfilled" : "known";
      if (wasStarted) setItemState(sql, id, state, provenance);
      else addItem(sql, id, state, provenance);
      continue;
    }
    const row = firstRows.get(id) as Extract<HistoryRow, { kind: "delivery" }>;
    if (!wasStarted) addItem(sql, id, "backfilling");
    targets ??= await ctx.targets();
    let input: RecordInput;
    try {
      // Built here, inside the item's error handling: one history item that cannot be built fails itself, not the run.
      const built = buildDeliveryRecord(
        { ...row.arrival, sourceId: ctx.sourceId, receivedAt: ctx.now(), sourceIp: null, provenance: "centrepoint-history" },
        targets,
        { autoRequest: ctx.block.autoRequest?.fileFormat ?? null },
      );
      input = ctx.correlate ? await ctx.correlate(built) : built;
    } catch (e) {
      setItemState(sql, id, "error");
      errors.push(`delivery ${id}: its record could not be built (${e instanceof Error ? e.message : String(e)}); the next run tries again`);
      log("error", "backfill record could not be built", { source: ctx.sourceId, deliveryId: id, error: e instanceof Error ? e.message : String(e) });
      continue;
    }
    try {
      const result = await ctx.ledger.record(input);
      // "duplicate": a push was recorded between the lookup and this backfill; the push stands.
      setItemState(sql, id, result.status === "accepted" ? "backfilled" : "known", result.status === "accepted" ? "centrepoint-history" : "webhook");
      if (result.status === "accepted")
        log("info", "delivery backfilled from CentrePoint's history", {
          source: ctx.sourceId,
          deliveryId: id,
          kind: input.kind,
          targets: input.targets.length,
        });
    } catch (e) {
      setItemState(sql, id, "error");
      errors.push(`delivery ${id}: the ledger did not take the backfill (${e instanceof Error ? e.message : String(e)}); the next run tries again`);
    }
  }
  return applied;
}
