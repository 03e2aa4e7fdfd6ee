import { type CentrePointApiConfig, isValidId, type SourceConfig, type TargetConfig } from "../../config/schemas";
import { type Listed, loadConfig } from "../../config/store";
import type { Bindings } from "../../env";
import { err, ok, type Result } from "../../lib/result";
import type { DownloadRow, EnrichingHandoff, PullLedgerStats } from "../../ledger/enrichment";
import type { ApiCallCount } from "../../pull/api-calls";
import { type ClientSummary, gatewayFor, clientName } from "../../pull/gateway";
import { TRIGGER_ATTRIBUTE, TRIGGER_SOURCE_ATTRIBUTE } from "../../pull/correlate";
import type { StoredEnrichment } from "../../pull/facts";
import type { EnrichmentJob } from "../../pull/jobs";
import type { RawRequestView } from "../../pull/requests";
import { centrepointBlock, type Refusal } from "./reconcile";
import { ledgerOf } from "./stubs";

/**
 * The pull side (docs/pull.md) for the JSON API and the dashboard alike: a delivery's enrichment,
 * raw-data requests and downloads; the "retry enrichment" and "release" actions; per-source lists;
 * the summaries the overview and /admin/metrics read. KV is read before any Durable Object is touched.
 */

/** A delivery's enrichment: the stored result, the job behind it, and every target that waits (or waited) for it. */
export interface DeliveryEnrichment {
  /** `pending` while lookups continue; else the job's outcome (null when the outcome is unknown: the job was pruned). */
  state: "pending" | "complete" | "partial" | "failed" | null;
  facts: string[];
  stored: StoredEnrichment | null;
  job: Pick<EnrichmentJob, "attempts" | "nextAt" | "giveUpAt" | "createdAt" | "updatedAt"> | null;
  releasedAt: number | null;
  targets: (EnrichingHandoff & { waiting: "held" | "until_deadline" | "handed" })[];
}

/** The pull side of one delivery. */
export interface DeliveryPull {
  enrichment: DeliveryEnrichment | null;
  /** Raw-data requests this delivery triggered, or whose completion it reported. */
  rawRequests: RawRequestView[];
  /** The delivery whose automatic request this data_retrieval event completes (from its envelope), or null. */
  completes: { source: string; deliveryId: string } | null;
  downloads: DownloadRow[];
}

/** The pull side of one delivery of `source` (whose ledger has it); `envelope` is the delivery's recorded envelope, parsed. */
export async function pullOfDelivery(env: Bindings, source: string, deliveryId: string, envelope: unknown): Promise<DeliveryPull> {
  const loaded = await loadConfig(env.CONFIG, "source", source);
  const block = loaded.state === "valid" ? loaded.config.centrepoint : undefined;
  const [view, rawRequests] = await Promise.all([
    ledgerOf(env, source).pullView(deliveryId),
    block ? gatewayFor(env, block).requestsOf(source, deliveryId) : Promise.resolve([]),
  ]);
  // A job exists only for a delivery some target wanted enriched, and then the ledger has that target's plan.
  const job = view.handoffs.length > 0 ? await env.PULLER.get(env.PULLER.idFromName(source)).job(deliveryId) : null;
  const enrichment: DeliveryEnrichment | null =
    job || view.enrichment || view.handoffs.length > 0
      ? {
          state: job ? (job.state === "pending" ? "pending" : job.outcome) : null,
          facts: job?.facts ?? [...new Set(view.handoffs.flatMap((h) => h.facts))],
          stored: view.enrichment?.stored ?? null,
          job: job && { attempts: job.attempts, nextAt: job.nextAt, giveUpAt: job.giveUpAt, createdAt: job.createdAt, updatedAt: job.updatedAt },
          releasedAt: view.enrichment?.releasedAt ?? null,
          targets: view.handoffs.map((h) => ({ ...h, waiting: h.handedAt !== null ? "handed" : h.deadlineAt === null ? "held" : "until_deadline" })),
        }
      : null;
  return { enrichment, rawRequests, completes: completesOf(source, envelope), downloads: view.downloads };
}

/** The triggering delivery an envelope names (src/pull/correlate.ts), or null. */
function completesOf(source: string, envelope: unknown): DeliveryPull["completes"] {
  if (typeof envelope !== "object" || envelope === null) return null;
  const e = envelope as Record<string, unknown>;
  const id = e[TRIGGER_ATTRIBUTE];
  if (typeof id !== "string") return null;
  const other = e[TRIGGER_SOURCE_ATTRIBUTE];
  return { source: typeof other === "string" ? other : source, deliveryId: id };
}

/** A refusal of an enrichment action on one delivery. */
async function deliveryRefusal(env: Bindings, source: string, id: string): Promise<Refusal | null> {
  const loaded = await loadConfig(env.CONFIG, "source", source, 0);
  if (loaded.state === "missing") return { status: 404, code: "not_found", message: `No source "${source}".` };
  if (!(await ledgerOf(env, source).get(id))) return { status: 404, code: "not_found", message: "No such delivery." };
  return null;
}

/**
 * Looks a delivery's enrichment up again from scratch ("retry enrichment"). Targets that still wait
 * or are held get the new result; events already handed to a target's outbox keep the envelope they
 * were composed with (an event's content never changes under one webhook-id; a replay resends it as it was).
 */
export async function retryEnrichment(env: Bindings, source: string, id: string): Promise<Result<EnrichmentJob, Refusal>> {
  const refusal = await deliveryRefusal(env, source, id);
  if (refusal) return err(refusal);
  const job = await env.PULLER.get(env.PULLER.idFromName(source)).retry(id);
  return job
    ? ok(job)
    : err({
        status: 409,
        code: "conflict",
        message: "No enrichment was planned for this delivery (no target wanted one), or it settled more than 30 days ago.",
      });
}

/** Hands off now every target that waits for (or holds until) this delivery's enrichment, with what was found ("release"). */
export async function releaseEnrichment(env: Bindings, source: string, id: string): Promise<Result<{ released: number }, Refusal>> {
  const refusal = await deliveryRefusal(env, source, id);
  if (refusal) return err(refusal);
  return ok(await ledgerOf(env, source).releaseEnrichment(id));
}

/** A source's raw-data requests, newest first (400 without a centrepoint block). */
export async function rawRequestsOfSource(
  env: Bindings,
  source: string,
  filter: { state?: string; limit: number },
): Promise<Result<RawRequestView[], Refusal>> {
  const block = await centrepointBlock(env, source);
  if (!block.ok) return block;
  return ok(await gatewayFor(env, block.value).requestsOfSource(source, filter));
}

/** A source's download audit rows, newest first. */
export async function downloadsOfSource(env: Bindings, source: string, limit: number): Promise<Result<DownloadRow[], Refusal>> {
  const loaded = await loadConfig(env.CONFIG, "source", source, 0);
  if (loaded.state === "missing") return err({ status: 404, code: "not_found", message: `No source "${source}".` });
  return ok(await ledgerOf(env, source).listDownloads(limit));
}

/** The pull side of every source and API client, for the overview and metrics; never calls CentrePoint. */
export interface PullSummary {
  /** Per source: held and waiting hand-offs, downloads; its jobs when it has a centrepoint block (null otherwise). */
  sources: { id: string; ledger: PullLedgerStats; jobs: { pending: number; outcomes: Record<string, number> } | null }[];
  clients: { name: string; sources: string[]; summary: ClientSummary }[];
  /** The Reconcilers' API calls are added by the metrics route; these are the clients'. */
  apiCalls: ApiCallCount[];
  /** Targets that want data files while links cannot be made as configured. */
  linkWarnings: string[];
}

/** Reads the pull side of every listed source (ledgers and Pullers) and of every API client those with a block use. */
export async function summarizePull(env: Bindings, sources: readonly Listed<SourceConfig>[], targets: readonly Listed<TargetConfig>[]): Promise<PullSummary> {
  const blocks = new Map<string, { block: CentrePointApiConfig; sources: string[] }>();
  for (const s of sources) {
    if (!s.valid || !s.config.centrepoint) continue;
    const name = clientName(s.config.centrepoint);
    const entry = blocks.get(name) ?? { block: s.config.centrepoint, sources: [] };
    entry.sources.push(s.id);
    blocks.set(name, entry);
  }
  const [perSource, clients] = await Promise.all([
    Promise.all(
      sources
        .filter((s) => isValidId(s.id))
        .map(async (s) => ({
          id: s.id,
          ledger: await ledgerOf(env, s.id).pullStats(),
          jobs: s.valid && s.config.centrepoint ? await env.PULLER.get(env.PULLER.idFromName(s.id)).summary() : null,
        })),
    ),
    Promise.all([...blocks].map(async ([name, { block, sources: ids }]) => ({ name, sources: ids, summary: await gatewayFor(env, block).summary() }))),
  ]);
  return { sources: perSource, clients, apiCalls: clients.flatMap((c) => c.summary.apiCalls), linkWarnings: linkWarnings(env, targets) };
}

/** Why file links of targets that want data files are not what they should be: relative (RELAY_PUBLIC_URL unset) or off (FILE_LINK_SECRET unset). */
export function linkWarnings(env: Bindings, targets: readonly Listed<TargetConfig>[]): string[] {
  const wanting = targets.filter((t) => t.valid && t.config.enrich.includes("datafiles")).map((t) => t.id);
  if (wanting.length === 0) return [];
  const out: string[] = [];
  if (!env.FILE_LINK_SECRET)
    out.push(
      `FILE_LINK_SECRET is not set: ${wanting.join(", ")} want data files, but their events carry no relay links (wrangler secret put FILE_LINK_SECRET).`,
    );
  if (!env.RELAY_PUBLIC_URL)
    out.push(`RELAY_PUBLIC_URL is not set: the file links ${wanting.join(", ")} receive are relative (/files/...); set it in wrangler.toml [vars].`);
  return out;
}

/** Re-exported for the routes: the refusal shape and the source's block check. */
export { centrepointBlock, type Refusal };
