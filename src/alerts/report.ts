import type { Bindings } from "../env";
import { log } from "../lib/log";
import { ALERTS_NAME, type Finding } from "./types";

/**
 * How the rest of the relay tells the Alerts object what it sees (docs/alerting.md). Reporting
 * never fails the reporter: an error is logged, and the one-minute evaluation still finds every
 * condition that has a state to read. Call these off the accepted-event path (a dead letter, a
 * refusal, a failed run), e.g. inside `ctx.waitUntil`.
 */

/** The Alerts Durable Object stub. */
export const alertsOf = (env: Bindings) => env.ALERTS.get(env.ALERTS.idFromName(ALERTS_NAME));

/** Reports an event condition (opens or touches its issue at once). */
export async function reportIssue(env: Bindings, finding: Finding): Promise<void> {
  try {
    await alertsOf(env).report(finding);
  } catch (e) {
    log("warn", "issue not reported", { condition: finding.condition, error: e instanceof Error ? e.message : String(e) });
  }
}

/** Reports one delivery of `source` refused with 401/403 (refused_deliveries counts them over 10 minutes). */
export async function reportRefusal(env: Bindings, source: string): Promise<void> {
  try {
    await alertsOf(env).countRefusal(source);
  } catch (e) {
    log("warn", "refusal not reported", { source, error: e instanceof Error ? e.message : String(e) });
  }
}
