import { env } from "cloudflare:test";
import { findConditions, type SourceReading, type TargetReading } from "../../src/alerts/conditions";
import { alertsOf } from "../../src/alerts/report";
import type { IssueView } from "../../src/alerts/types";
import { type AlertingConfig, DEFAULT_ALERTING } from "../../src/config/alerting";
import { T0 } from "./clock";
import { freshId } from "./helpers";

/** Tests pass times to the Alerts object's methods, from the faked clock's start (support/clock.ts). */
export { T0 } from "./clock";
export const MINUTE = 60_000;

/** A fresh Alerts object (the relay uses one; tests use one each). */
export function freshAlerts() {
  return env.ALERTS.get(env.ALERTS.idFromName(freshId("alerts")));
}

type Health = NonNullable<TargetReading["health"]>;

/** A target reading with a healthy outbox, `over` merged into its health. */
export function targetReading(id: string, over: Partial<Health> = {}): TargetReading {
  return {
    id,
    health: {
      counts: { dead: 0, held: 0 },
      oldestPendingAgeMs: null,
      heldBy: null,
      heldReason: null,
      breaker: { status: "closed", consecutiveFailures: 0 },
      lastError: null,
      ...over,
    },
  };
}

/** A source reading with nothing wrong, `over` merged in. */
export function sourceReading(id: string, over: Partial<SourceReading> = {}): SourceReading {
  return {
    id,
    stats: { lastReceivedAt: T0 },
    enrichmentHeld: 0,
    lifecycle: { archive: { halted: null }, integrity: { report: { ok: true, firstBroken: null } } },
    reconcile: {
      lastFinished: { outcome: "ok", backfilled: 0, firstError: null, upstream: null },
      registration: { problems: [], error: null, upstream: null },
    },
    reconcileReadable: true,
    ...over,
  };
}

/** One evaluation at `now` of these readings, as the one-minute cron makes it. */
export async function evaluateAt(
  alerts: ReturnType<typeof freshAlerts>,
  now: number,
  readings: { sources?: SourceReading[]; targets?: TargetReading[] },
  config: AlertingConfig = DEFAULT_ALERTING,
) {
  const { findings, scope } = findConditions(readings.sources ?? [], readings.targets ?? [], config, now);
  await alerts.evaluate(findings, scope, now);
}

/** The issue_events rows of an Alerts object, oldest first. */
export function issueEvents(alerts: ReturnType<typeof freshAlerts>) {
  return import("cloudflare:test").then(({ runInDurableObject }) =>
    runInDurableObject(alerts, (_i, state) =>
      state.storage.sql
        .exec<{ seq: number; issue_id: number; type: string; sent_at: number | null; snapshot: string }>("SELECT * FROM issue_events ORDER BY seq")
        .toArray(),
    ),
  );
}

/** Runs `fn` with the KV document `alerting` set to `doc`, then removes it. */
export async function withAlerting<T>(doc: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  await env.CONFIG.put("alerting", JSON.stringify(doc));
  try {
    return await fn();
  } finally {
    await env.CONFIG.delete("alerting");
  }
}

/** The issues of an object once at least `n` exist (reports travel in waitUntil): polls at most 50 times, 20 ms apart. */
export async function issuesOf(object: string, n = 1): Promise<IssueView[]> {
  let items: IssueView[] = [];
  for (let i = 0; i < 50 && items.length < n; i++) {
    items = await alertsOf(env).list({ object, limit: 10 });
    if (items.length < n) await new Promise((r) => setTimeout(r, 20));
  }
  return items;
}
