import { isValidId, type SourceConfig, type TargetConfig } from "../../config/schemas";
import { type Listed, listConfigs } from "../../config/store";
import type { Bindings } from "../../env";
import { log } from "../../lib/log";
import type { LedgerLifecycle, LedgerStats } from "../../ledger/queries";
import type { OutboxHealth } from "../../outbox/views";
import type { ReconcileSummary } from "../../reconcile/reconciler";
import { reconcileSummary } from "./reconcile";
import { ledgerOf, outboxOf } from "./stubs";

/**
 * What the overview shows of every source and target; a Durable Object that fails to answer shows
 * as null and is logged. A document stored under an id the API refuses is listed (invalid) with no
 * counts: its Durable Objects are never opened (opening one would create it).
 */

/** A source: its document, counts, archive, retention and integrity progress, and reconciliation state (stored state only: nothing is checked to show it; null without a `centrepoint` block, or unreadable). */
export interface SourceSummary {
  listed: Listed<SourceConfig>;
  stats: LedgerStats | null;
  lifecycle: LedgerLifecycle | null;
  reconcile: ReconcileSummary | null;
}

/** A target: its document and health. */
export interface TargetSummary {
  listed: Listed<TargetConfig>;
  health: OutboxHealth | null;
}

/** Every source with its ledger counts, lifecycle progress and stored reconciliation state: counters and stored rows only, never a check, a scan or a call to CentrePoint. */
export async function summarizeSources(env: Bindings): Promise<SourceSummary[]> {
  const sources = await listConfigs(env.CONFIG, "source");
  return Promise.all(
    sources.map(async (listed) => {
      if (!isValidId(listed.id)) return { listed, stats: null, lifecycle: null, reconcile: null };
      const ledger = ledgerOf(env, listed.id);
      const [stats, lifecycle, reconcile] = await Promise.all([
        quietly(() => ledger.stats(), "stats", listed.id),
        quietly(() => ledger.lifecycle(), "lifecycle", listed.id),
        quietly(() => reconcileSummary(env, listed), "reconciliation", listed.id),
      ]);
      return { listed, stats, lifecycle, reconcile };
    }),
  );
}

/** Every target with its outbox health. */
export async function summarizeTargets(env: Bindings): Promise<TargetSummary[]> {
  const targets = await listConfigs(env.CONFIG, "target");
  return Promise.all(
    targets.map(async (listed) => ({
      listed,
      health: isValidId(listed.id) ? await quietly(() => outboxOf(env, listed.id).health(), "health", listed.id) : null,
    })),
  );
}

async function quietly<T>(read: () => Promise<T>, what: string, id: string): Promise<T | null> {
  try {
    return await read();
  } catch (e) {
    log("error", "admin read failed", { what, id, error: e instanceof Error ? e.message : String(e) });
    return null;
  }
}
