import { findConditions, type SourceReading, type TargetReading } from "../../alerts/conditions";
import { alertsOf } from "../../alerts/report";
import { loadAlerting } from "../../config/alerting";
import { isValidId } from "../../config/schemas";
import { listConfigs } from "../../config/store";
import type { Bindings } from "../../env";
import { log } from "../../lib/log";
import { ledgerOf, outboxOf, reconcilerOf } from "./stubs";

/**
 * The one-minute evaluation of the alert conditions (Cron Trigger "* * * * *", docs/alerting.md):
 * reads every target's outbox health and every source's ledger stats, lifecycle, pull stats and
 * stored reconciliation summary (the reads /admin/metrics makes: counters and stored rows, never a
 * scan or a call to CentrePoint), in batches of READ_BATCH objects, and hands what it finds to the
 * Alerts object, which opens and resolves issues. A read that fails leaves that object's issues as
 * they are (logged).
 */

/** Objects read at once. */
const READ_BATCH = 25;

/** Evaluates every condition at `now` (epoch ms); returns how many issues are unresolved afterwards. */
export async function evaluateIssues(env: Bindings, now = Date.now()): Promise<{ open: number }> {
  const [sources, targets, alerting] = await Promise.all([
    listConfigs(env.CONFIG, "source", 0),
    listConfigs(env.CONFIG, "target", 0),
    loadAlerting(env.CONFIG),
  ]);
  if (alerting.state === "invalid") log("warn", "alerting document invalid; the defaults apply", { errors: alerting.errors });
  const targetReadings = await inBatches(
    targets.filter((t) => isValidId(t.id)),
    async (t): Promise<TargetReading> => ({ id: t.id, health: await quietly(() => outboxOf(env, t.id).health(), "health", t.id) }),
  );
  const sourceReadings = await inBatches(
    sources.filter((s) => isValidId(s.id)),
    async (s): Promise<SourceReading> => {
      const ledger = ledgerOf(env, s.id);
      const hasBlock = s.valid && s.config.centrepoint !== undefined;
      const [stats, lifecycle, pull, reconcile] = await Promise.all([
        quietly(() => ledger.stats(), "stats", s.id),
        quietly(() => ledger.lifecycle(), "lifecycle", s.id),
        quietly(() => ledger.pullStats(), "pull stats", s.id),
        hasBlock ? quietly(() => reconcilerOf(env, s.id).summary(), "reconciliation", s.id) : Promise.resolve(null),
      ]);
      return { id: s.id, stats, lifecycle, enrichmentHeld: pull?.held ?? null, reconcile, reconcileReadable: !hasBlock || reconcile !== null };
    },
  );
  const { findings, scope } = findConditions(sourceReadings, targetReadings, alerting.config, now);
  return alertsOf(env).evaluate(findings, scope, now);
}

async function inBatches<T, R>(items: readonly T[], read: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += READ_BATCH) out.push(...(await Promise.all(items.slice(i, i + READ_BATCH).map(read))));
  return out;
}

async function quietly<T>(read: () => Promise<T>, what: string, id: string): Promise<T | null> {
  try {
    return await read();
  } catch (e) {
    log("error", "issue evaluation read failed", { what, id, error: e instanceof Error ? e.message : String(e) });
    return null;
  }
}
