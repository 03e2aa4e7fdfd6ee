import { listConfigs } from "../config/store";
import type { Bindings } from "../env";
import { auditSystemAfter } from "../audit/audit";
import { log } from "../lib/log";
import type { TickOutcome } from "./reconciler";

/**
 * The 5-minute Cron Trigger's job: every enabled source whose document has a `centrepoint` block
 * with `reconcile.everyMinutes` > 0 gets a tick; its Reconciler starts a run when `everyMinutes` have
 * passed since its last run started, and does the work in its own alarm. Sources without a block,
 * and disabled ones (`enabled: false`), never get a Reconciler from the schedule.
 */
export async function tickReconcilers(env: Bindings, scheduledTime: number): Promise<{ source: string; outcome: TickOutcome | "error" }[]> {
  const sources = (await listConfigs(env.CONFIG, "source", 0)).filter(
    (s) => s.valid && s.config.enabled && s.config.centrepoint && s.config.centrepoint.reconcile.everyMinutes > 0,
  );
  return Promise.all(
    sources.map(async ({ id }) => {
      try {
        const outcome = await env.RECONCILER.get(env.RECONCILER.idFromName(id)).tick(id, scheduledTime);
        if (outcome === "started") {
          log("info", "reconciliation started", { source: id, trigger: "scheduled" });
          await auditSystemAfter(env, "cron", { action: "source.reconcile", object: { source: id }, reason: "scheduled" });
        }
        return { source: id, outcome };
      } catch (e) {
        log("error", "reconciliation tick failed", { source: id, error: e instanceof Error ? e.message : String(e) });
        return { source: id, outcome: "error" as const };
      }
    }),
  );
}
