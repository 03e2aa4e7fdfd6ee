import type { SourceConfig, TargetConfig } from "../../config/schemas";
import { type Listed, listConfigs } from "../../config/store";
import type { Bindings } from "../../env";
import { log } from "../../lib/log";
import type { IntegrityReport, LedgerStats } from "../../ledger/queries";
import type { OutboxHealth } from "../../outbox/views";
import type { ReconcileSummary } from "../../reconcile/reconciler";
import { reconcileSummary } from "./reconcile";
import { ledgerOf, outboxOf } from "./stubs";

/** What the overview shows of every source and target; a Durable Object that fails to answer shows as null and is logged. */

/** A source: its document, counts, latest integrity report, and reconciliation state (null without a `centrepoint` block, or unreadable). */
export interface SourceSummary {
  listed: Listed<SourceConfig>;
  stats: LedgerStats | null;
  integrity: IntegrityReport | null;
  reconcile: ReconcileSummary | null;
}

/** A target: its document and health. */
export interface TargetSummary {
  listed: Listed<TargetConfig>;
  health: OutboxHealth | null;
}

/** How old an integrity report the overview may show before it runs a new check. */
export const OVERVIEW_INTEGRITY_MAX_AGE_MS = 10 * 60_000;

/** Every source with its ledger counts, a recent integrity check and its stored reconciliation state (never a call to CentrePoint). */
export async function summarizeSources(env: Bindings): Promise<SourceSummary[]> {
  const sources = await listConfigs(env.CONFIG, "source");
  return Promise.all(
    sources.map(async (listed) => {
      const ledger = ledgerOf(env, listed.id);
      const [stats, integrity, reconcile] = await Promise.all([
        quietly(() => ledger.stats(), "stats", listed.id),
        quietly(() => ledger.recentIntegrity(OVERVIEW_INTEGRITY_MAX_AGE_MS), "integrity", listed.id),
        quietly(() => reconcileSummary(env, listed), "reconciliation", listed.id),
      ]);
      return { listed, stats, integrity, reconcile };
    }),
  );
}

/** Every target with its outbox health. */
export async function summarizeTargets(env: Bindings): Promise<TargetSummary[]> {
  const targets = await listConfigs(env.CONFIG, "target");
  return Promise.all(targets.map(async (listed) => ({ listed, health: await quietly(() => outboxOf(env, listed.id).health(), "health", listed.id) })));
}

async function quietly<T>(read: () => Promise<T>, what: string, id: string): Promise<T | null> {
  try {
    return await read();
  } catch (e) {
    log("error", "admin read failed", { what, id, error: e instanceof Error ? e.message : String(e) });
    return null;
  }
}
