import { listConfigs } from "../config/store";
import type { Bindings } from "../env";
import { auditSystemAfter } from "../audit/audit";
import { log } from "../lib/log";

/** A full re-verification of every ledger at least this often (the daily runs are incremental). */
export const FULL_CHECK_EVERY_MS = 7 * 86_400_000;

/**
 * The Cron Trigger's job: starts (or continues) the integrity check of every source's ledger, one
 * after another: incremental from each ledger's checkpoint, or a full re-verification when the
 * last one is more than FULL_CHECK_EVERY_MS old. Each ledger verifies one slice at once and the
 * rest from its alarm, keeps the report and logs it (an `error` line naming the first broken
 * record, so an alert on error logs catches it); this only says which checks are under way.
 */
export async function checkAllLedgers(env: Bindings): Promise<{ source: string; ok: boolean | null }[]> {
  const results: { source: string; ok: boolean | null }[] = [];
  for (const { id } of await listConfigs(env.CONFIG, "source", 0)) {
    try {
      const status = await env.LEDGER.get(env.LEDGER.idFromName(id)).checkIntegrity({ fullIfOlderThanMs: FULL_CHECK_EVERY_MS });
      // A run that finished in this call has logged its report; a longer one goes on from the ledger's alarm.
      results.push({ source: id, ok: status.running ? null : (status.report?.ok ?? null) });
      if (status.running) log("info", "ledger integrity check under way", { source: id, ...status.running });
    } catch (e) {
      results.push({ source: id, ok: false });
      log("error", "ledger integrity check failed", { source: id, error: e instanceof Error ? e.message : String(e) });
    }
  }
  await auditSystemAfter(env, "cron", {
    action: "ledger.integrity-check",
    after: { sources: results.length, broken: results.filter((r) => r.ok === false).map((r) => r.source) },
  });
  return results;
}
