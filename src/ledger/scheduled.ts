import { listConfigs } from "../config/store";
import type { Bindings } from "../env";
import { log } from "../lib/log";

/**
 * The Cron Trigger's job: a full integrity check of every source's ledger, one after another.
 * Each report is kept by the ledger (the dashboard shows it); a broken chain is logged as an
 * error naming the first broken record, so an alert on error logs catches it.
 */
export async function checkAllLedgers(env: Bindings): Promise<{ source: string; ok: boolean }[]> {
  const results: { source: string; ok: boolean }[] = [];
  for (const { id } of await listConfigs(env.CONFIG, "source", 0)) {
    try {
      const report = await env.LEDGER.get(env.LEDGER.idFromName(id)).verifyIntegrity();
      results.push({ source: id, ok: report.ok });
      if (report.ok) log("info", "ledger integrity intact", { source: id, checked: report.checked, headHash: report.headHash });
      else log("error", "ledger integrity broken", { source: id, checked: report.checked, firstBroken: report.firstBroken });
    } catch (e) {
      results.push({ source: id, ok: false });
      log("error", "ledger integrity check failed", { source: id, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return results;
}
