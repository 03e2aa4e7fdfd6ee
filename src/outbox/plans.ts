import type { Bindings } from "../env";
import { log } from "../lib/log";
import { awaitingPlans, markPlansAsked } from "./transitions";

/**
 * Asks each source's ledger to hand off again, with this target's enrichment plan, the rows its
 * fixed filter wants that wait for one (transitions.ts applyFilter), and marks them asked. A
 * ledger that cannot be reached is asked again on a later run. `sql` is the outbox's (metered) SQL.
 */
export async function askForPlans(storage: DurableObjectStorage, sql: SqlStorage, env: Pick<Bindings, "LEDGER">, targetId: string): Promise<void> {
  for (const [source, ids] of awaitingPlans(sql)) {
    try {
      const { missing } = await env.LEDGER.get(env.LEDGER.idFromName(source)).planReleased(targetId, ids);
      storage.transactionSync(() => markPlansAsked(sql, source, ids, missing, Date.now()));
    } catch (e) {
      log("warn", "outbox could not ask the ledger to plan released events; asking again later", {
        target: targetId,
        source,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }
}
