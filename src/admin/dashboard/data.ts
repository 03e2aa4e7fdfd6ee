import type { SourceConfig, TargetConfig } from "../../config/schemas";
import { type Listed, listConfigs } from "../../config/store";
import type { Bindings } from "../../env";
import { log } from "../../lib/log";
import type { DeliveryRecord, IntegrityReport } from "../../ledger/ledger";
import type { AttemptView, DeliveryView, OutboxHealth } from "../../outbox/outbox";
import { deliveryAdmin } from "../delivery-routes";

/**
 * What the dashboard reads. Lists and details come from the admin JSON routes, called in-process
 * (one merge, one cursor format, one set of query rules for the API and the pages); the rest are
 * the Durable Objects' RPC methods. Nothing here writes.
 */

/** A delivery as the admin JSON API lists it (times as ISO strings). */
export type ListedDelivery = Omit<DeliveryRecord, "receivedAt" | "lastSeenAt"> & { source: string; receivedAt: string; lastSeenAt: string };

/** One target's part of a delivery's detail: the ledger's hand-off and the outbox's state and attempts. */
export interface DeliveryTarget {
  target: string;
  handoff: { targetId: string; plannedAt: number; handedAt: number | null; tries: number; lastError: string | null };
  delivery: { delivery: DeliveryView; attempts: AttemptView[] } | null;
}

/** `GET /admin/deliveries/:source/:id`. */
export type DeliveryDetail = ListedDelivery & { body: { text: string; base64: string }; envelope: unknown; targets: DeliveryTarget[] };

/** Filter of the deliveries list, as the admin API takes it. */
export interface DeliveryQuery {
  /** Search: delivery id, subject, upload id, tracking id or subject identifier. */
  q?: string;
  source?: string;
  kind?: string;
  from?: string;
  to?: string;
  attention?: boolean;
  cursor?: string;
  limit: number;
}

/** A source on the overview: its document, counts and integrity. */
export interface SourceSummary {
  listed: Listed<SourceConfig>;
  stats: Awaited<ReturnType<LedgerStub["stats"]>> | null;
  integrity: IntegrityReport | null;
}

/** A target on the overview: its document and health. */
export interface TargetSummary {
  listed: Listed<TargetConfig>;
  health: OutboxHealth | null;
}

type LedgerStub = ReturnType<typeof ledgerOf>;

/** The ledger of a source. */
export const ledgerOf = (env: Bindings, source: string) => env.LEDGER.get(env.LEDGER.idFromName(source));
/** The outbox of a target. */
export const outboxOf = (env: Bindings, target: string) => env.OUTBOX.get(env.OUTBOX.idFromName(target));

/** A page of deliveries, newest first; `error` holds the API's message when the filter is refused. */
export async function listDeliveries(env: Bindings, q: DeliveryQuery): Promise<{ items: ListedDelivery[]; next: string | null; error: string | null }> {
  const params = new URLSearchParams({ limit: String(q.limit) });
  for (const key of ["q", "source", "kind", "from", "to", "cursor"] as const) {
    const value = q[key];
    if (value) params.set(key, value);
  }
  if (q.attention) params.set("attention", "true");
  const res = await deliveryAdmin.request(`/deliveries?${params}`, undefined, env);
  if (res.ok) return { ...((await res.json()) as { items: ListedDelivery[]; next: string | null }), error: null };
  const body = (await res.json()) as { message?: string; fields?: { path: string; message: string }[] };
  const detail = body.fields?.map((f) => `${f.path} ${f.message}`).join("; ");
  return { items: [], next: null, error: detail ? `${body.message ?? "Invalid filter."} ${detail}` : (body.message ?? "Invalid filter.") };
}

/** One delivery with body, envelope and each target's state and attempts; null when unknown. */
export async function getDelivery(env: Bindings, source: string, id: string): Promise<DeliveryDetail | null> {
  const res = await deliveryAdmin.request(`/deliveries/${encodeURIComponent(source)}/${encodeURIComponent(id)}`, undefined, env);
  return res.ok ? ((await res.json()) as DeliveryDetail) : null;
}

/** The sources that hold a delivery with exactly this id (a delivery id is unique within a source only). */
export async function findDeliveryById(env: Bindings, id: string): Promise<string[]> {
  const sources = (await listConfigs(env.CONFIG, "source")).map((s) => s.id);
  const hits = await Promise.all(sources.map(async (s) => ((await quietly(() => ledgerOf(env, s).get(id), "get", s)) ? s : null)));
  return hits.filter((s): s is string => s !== null);
}

/** How old an integrity check the overview may show before it runs a new one. */
export const OVERVIEW_INTEGRITY_MAX_AGE_MS = 10 * 60_000;

/** Every source with its ledger counts and a recent integrity check; a failing ledger shows as null, logged. */
export async function summarizeSources(env: Bindings): Promise<SourceSummary[]> {
  const sources = await listConfigs(env.CONFIG, "source");
  return Promise.all(
    sources.map(async (listed) => {
      const ledger = ledgerOf(env, listed.id);
      const [stats, integrity] = await Promise.all([
        quietly(() => ledger.stats(), "stats", listed.id),
        quietly(() => ledger.recentIntegrity(OVERVIEW_INTEGRITY_MAX_AGE_MS), "integrity", listed.id),
      ]);
      return { listed, stats, integrity };
    }),
  );
}

/** Every target with its outbox health; a failing outbox shows as null, logged. */
export async function summarizeTargets(env: Bindings): Promise<TargetSummary[]> {
  const targets = await listConfigs(env.CONFIG, "target");
  return Promise.all(targets.map(async (listed) => ({ listed, health: await quietly(() => outboxOf(env, listed.id).health(), "health", listed.id) })));
}

async function quietly<T>(read: () => Promise<T>, what: string, id: string): Promise<T | null> {
  try {
    return await read();
  } catch (e) {
    log("error", "dashboard read failed", { what, id, error: e instanceof Error ? e.message : String(e) });
    return null;
  }
}
