import type { CentrePointApiConfig, SourceConfig } from "../../config/schemas";
import { type Listed, loadConfig } from "../../config/store";
import type { Bindings } from "../../env";
import type { ErrorCode } from "../../lib/errors";
import { log } from "../../lib/log";
import { err, ok, type Result } from "../../lib/result";
import type { ReconcileReport, ReconcileSummary, RegistrationCheck } from "../../reconcile/reconciler";
import { reconcilerOf } from "./stubs";

/**
 * Reconciliation and the registration check, one path for the JSON API and the dashboard. KV is
 * read first: a source that does not exist, is invalid or has no `centrepoint` block never gets a
 * Reconciler. A run or check that CentrePoint's API failed answers 502 with its status and a short
 * reason (never a token or a secret).
 */

/** Why a call was refused: the HTTP status, the contract's code, a message, and for 502 what CentrePoint answered. */
export interface Refusal {
  status: 400 | 404 | 409 | 500 | 502;
  code: ErrorCode;
  message: string;
  upstream?: { status: number | null; endpoint: string };
}

/** The source's `centrepoint` block, or the refusal (404 unknown, 400 invalid or without a block; with `enabledOnly`, 409 disabled). */
export async function centrepointBlock(env: Bindings, source: string, options: { enabledOnly?: boolean } = {}): Promise<Result<CentrePointApiConfig, Refusal>> {
  const loaded = await loadConfig(env.CONFIG, "source", source, 0);
  if (loaded.state === "missing") return err({ status: 404, code: "not_found", message: `No source "${source}".` });
  if (loaded.state === "invalid")
    return err({ status: 400, code: "source_misconfigured", message: `The source document "${source}" is invalid; fix it with PUT /admin/sources/${source}.` });
  if (!loaded.config.centrepoint)
    return err({
      status: 400,
      code: "bad_request",
      message: `Source "${source}" has no centrepoint block: add its study id, webhook id and API client (clientIdEnv, clientSecretEnv) to reconcile it or check its registration (README, "Reconciliation").`,
    });
  if (options.enabledOnly && !loaded.config.enabled)
    return err({
      status: 409,
      code: "source_disabled",
      message: `Source "${source}" is disabled (enabled: false): it is not reconciled. Enable it with PUT /admin/sources/${source} first.`,
    });
  return ok(loaded.config.centrepoint);
}

/**
 * Runs a reconciliation now (or continues the one in progress) and answers its report; a failed run
 * is refused, and so is a disabled source (409 `source_disabled`: nothing runs, nothing is asked).
 */
export async function runReconciliation(env: Bindings, source: string, via: "api" | "dashboard"): Promise<Result<ReconcileReport, Refusal>> {
  const block = await centrepointBlock(env, source, { enabledOnly: true });
  if (!block.ok) return block;
  const report = await reconcilerOf(env, source).run(source);
  log("info", "reconciliation run on demand", { source, via, run: report.id, complete: report.complete, outcome: report.outcome });
  if (report.outcome !== "failed") return ok(report);
  const message = `The reconciliation failed: ${report.firstError ?? "no reason recorded"}`;
  if (report.failure === "upstream") return err({ status: 502, code: "upstream_error", message, upstream: report.upstream ?? undefined });
  if (report.failure === "config") return err({ status: 400, code: "source_misconfigured", message });
  return err({ status: 500, code: "internal_error", message });
}

/** Recent reports of a source, newest first. */
export async function reconcileReports(env: Bindings, source: string, limit: number): Promise<Result<ReconcileReport[], Refusal>> {
  const block = await centrepointBlock(env, source);
  if (!block.ok) return block;
  return ok(await reconcilerOf(env, source).reports(limit));
}

/** Reads and compares the webhook registration now. */
export async function checkRegistration(env: Bindings, source: string): Promise<Result<RegistrationCheck, Refusal>> {
  const block = await centrepointBlock(env, source);
  if (!block.ok) return block;
  const check = await reconcilerOf(env, source).checkRegistration(source);
  if (check.ok) return check;
  if ("config" in check.error) return err({ status: 400, code: "source_misconfigured", message: `The registration cannot be checked: ${check.error.config}.` });
  return err({
    status: 502,
    code: "upstream_error",
    message: `The registration could not be read: ${check.error.error}`,
    upstream: check.error.upstream ?? undefined,
  });
}

/** The stored reconciliation state of a listed source for pages and metrics (never calls CentrePoint); null without a block. */
export async function reconcileSummary(env: Bindings, listed: Listed<SourceConfig>): Promise<ReconcileSummary | null> {
  if (!listed.valid || !listed.config.centrepoint) return null;
  return reconcilerOf(env, listed.id).summary();
}

/** A report as the JSON API answers it: times as ISO strings. */
export function reportJson(source: string, r: ReconcileReport) {
  const iso = (ms: number) => new Date(ms).toISOString();
  return { source, ...r, startedAt: iso(r.startedAt), finishedAt: r.finishedAt === null ? null : iso(r.finishedAt), lookbackFrom: iso(r.lookbackFrom) };
}
