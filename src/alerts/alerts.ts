import { DurableObject } from "cloudflare:workers";
import { type Condition, conditionSetting, loadAlerting } from "../config/alerting";
import type { Bindings } from "../env";
import { log } from "../lib/log";
import { migrate } from "../lib/migrate";
import { DAY_MS } from "../lib/time";
import {
  type ActionRefusal,
  acknowledgeIssue,
  hasUnsent,
  type IssueContext,
  listIssues,
  markSent,
  openCounts,
  pruneIssues,
  raise,
  readIssue,
  resolveIssue,
  rowIdOf,
  unresolved,
  unsentChanges,
} from "./issues";
import { notifyIssueChange } from "./notify";
import { ALERTS_MIGRATIONS, EVENTS_KEPT, RESOLVED_KEPT_DAYS } from "./schema";
import { type EvaluationScope, type Finding, type IssueFilter, type IssueView, objectKey } from "./types";

/**
 * The relay's issues (docs/alerting.md), one Durable Object for the whole relay (ALERTS_NAME). It
 * holds state and schedule only: reporters (domain objects, ingress) and the one-minute evaluation
 * (src/cron.ts) tell it what they see; it opens, touches, reopens and resolves issues, and every
 * state change writes an issue_events row in the same transaction. Its alarm hands unsent changes to
 * notifyIssueChange in seq order and marks each sent after it resolves: at least once, across restarts.
 */

/** Conditions reported only as events (nothing to evaluate): resolved when not reported again for EVENT_QUIET_MS. */
export const EVENT_ONLY_CONDITIONS: readonly Condition[] = ["centrepoint_auth_failed", "enrichment_failed", "raw_request_failed"];
/** How long an event-only condition must stay quiet before its issue resolves itself. */
export const EVENT_QUIET_MS = 60 * 60_000;
/** The refusal window of refused_deliveries. */
export const REFUSAL_WINDOW_MINUTES = 10;
/** Wait before handing changes on again after notifyIssueChange failed. */
export const NOTIFY_RETRY_MS = 30_000;
/** Changes handed on per alarm run at most (the alarm re-arms for the rest). */
const CHANGES_PER_RUN = 100;

/** Why an operator action was refused (null: done). */
export type IssueActionResult = { ok: true; issue: IssueView } | { ok: false; reason: ActionRefusal };

export class Alerts extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  /** The channels' entry point; a field so a test can observe or fail it. */
  notify: typeof notifyIssueChange = notifyIssueChange;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, ALERTS_MIGRATIONS));
  }

  private get context(): IssueContext {
    return { baseUrl: this.env.RELAY_PUBLIC_URL ?? "" };
  }

  /** An event condition seen where it happened (a dead letter, a failed run, ...): opens or touches its issue at once. */
  async report(finding: Finding, at = Date.now()): Promise<void> {
    const setting = conditionSetting((await loadAlerting(this.env.CONFIG)).config, finding.condition);
    if (!setting.enabled) return;
    this.ctx.storage.transactionSync(() => raise(this.sql, finding, setting.severity, at, this.context));
    await this.arm();
  }

  /** A delivery of `source` refused with 401/403: counted per minute; at refusedPerTenMinutes within 10 minutes, refused_deliveries opens (or counts on). */
  async countRefusal(source: string, at = Date.now()): Promise<void> {
    const config = (await loadAlerting(this.env.CONFIG)).config;
    const setting = conditionSetting(config, "refused_deliveries");
    const minute = Math.floor(at / 60_000);
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("INSERT INTO refusals (source, minute, n) VALUES (?, ?, 1) ON CONFLICT (source, minute) DO UPDATE SET n = n + 1", source, minute);
      const n = this.refusalsOf(source, minute);
      if (setting.enabled && n >= config.refusedPerTenMinutes)
        raise(
          this.sql,
          { condition: "refused_deliveries", object: { source }, summary: `${n} deliveries refused (401/403) in ${REFUSAL_WINDOW_MINUTES} minutes`, count: 1 },
          setting.severity,
          at,
          this.context,
        );
    });
    await this.arm();
  }

  private refusalsOf(source: string, minute: number): number {
    return (
      this.sql.exec<{ n: number | null }>("SELECT SUM(n) AS n FROM refusals WHERE source = ? AND minute > ?", source, minute - REFUSAL_WINDOW_MINUTES).one()
        .n ?? 0
    );
  }

  /**
   * One evaluation (at least every minute): `findings` are the conditions true now. A finding
   * opens its issue once it has been seen for its holdMs without a gap; an unresolved issue of a
   * condition in scope whose condition is not found now resolves itself (by `system`), as does
   * refused_deliveries below its threshold and an event-only condition quiet for EVENT_QUIET_MS.
   */
  async evaluate(findings: Finding[], scope: EvaluationScope, now = Date.now()): Promise<{ open: number }> {
    const config = (await loadAlerting(this.env.CONFIG)).config;
    const ctx = this.context;
    const open = this.ctx.storage.transactionSync(() => {
      const active = new Set<string>();
      const keyOf = (condition: Condition, object: string) => `${condition}|${object}`;
      for (const f of findings) {
        const setting = conditionSetting(config, f.condition);
        if (!setting.enabled) continue;
        const key = keyOf(f.condition, objectKey(f.object));
        if (active.has(key)) continue;
        active.add(key);
        const holdMs = f.holdMs ?? 0;
        if (holdMs === 0) {
          raise(this.sql, f, setting.severity, now, ctx);
          continue;
        }
        this.sql.exec("INSERT OR IGNORE INTO observations (condition, object, since) VALUES (?, ?, ?)", f.condition, objectKey(f.object), now);
        const since = this.sql
          .exec<{ since: number }>("SELECT since FROM observations WHERE condition = ? AND object = ?", f.condition, objectKey(f.object))
          .one().since;
        if (now - since >= holdMs) raise(this.sql, f, setting.severity, now, ctx);
      }
      const minute = Math.floor(now / 60_000);
      this.sql.exec("DELETE FROM refusals WHERE minute <= ?", minute - REFUSAL_WINDOW_MINUTES);
      if (conditionSetting(config, "refused_deliveries").enabled)
        for (const { source } of this.sql.exec<{ source: string }>("SELECT DISTINCT source FROM refusals").toArray())
          if (this.refusalsOf(source, minute) >= config.refusedPerTenMinutes) active.add(keyOf("refused_deliveries", `source:${source}`));

      const inScope = new Set<Condition>(scope.conditions);
      const skip = new Set(scope.skipObjects);
      for (const o of this.sql.exec<{ condition: Condition; object: string }>("SELECT condition, object FROM observations").toArray())
        if (inScope.has(o.condition) && !skip.has(o.object) && !active.has(keyOf(o.condition, o.object)))
          this.sql.exec("DELETE FROM observations WHERE condition = ? AND object = ?", o.condition, o.object);
      const quiet = new Set(EVENT_ONLY_CONDITIONS);
      for (const i of unresolved(this.sql, [...inScope, "refused_deliveries", ...EVENT_ONLY_CONDITIONS])) {
        const cleared = quiet.has(i.condition)
          ? !conditionSetting(config, i.condition).enabled || now - i.lastSeenAt >= EVENT_QUIET_MS
          : !skip.has(i.object) && !active.has(keyOf(i.condition, i.object));
        if (cleared) resolveIssue(this.sql, i.id, "system", now, ctx);
      }
      pruneIssues(this.sql, now, RESOLVED_KEPT_DAYS * DAY_MS, EVENTS_KEPT);
      return openCounts(this.sql).reduce((n, c) => n + c.count, 0);
    });
    await this.arm();
    return { open };
  }

  /** Acknowledges an open issue (`by`: the actor id). */
  async acknowledge(id: string, by: string, note: string | null, at = Date.now()): Promise<IssueActionResult> {
    const row = rowIdOf(id);
    if (row === null) return { ok: false, reason: "not_found" };
    const refused = this.ctx.storage.transactionSync(() => acknowledgeIssue(this.sql, row, by, note, at, this.context));
    if (refused) return { ok: false, reason: refused };
    await this.arm();
    return { ok: true, issue: readIssue(this.sql, row, this.context)! };
  }

  /** Resolves an issue by hand (`by`: the actor id); if its condition is still true, the next evaluation reopens it (same id). */
  async resolve(id: string, by: string, at = Date.now()): Promise<IssueActionResult> {
    const row = rowIdOf(id);
    if (row === null) return { ok: false, reason: "not_found" };
    const existing = readIssue(this.sql, row, this.context);
    if (!existing) return { ok: false, reason: "not_found" };
    if (!this.ctx.storage.transactionSync(() => resolveIssue(this.sql, row, by, at, this.context))) return { ok: false, reason: "resolved" };
    await this.arm();
    return { ok: true, issue: readIssue(this.sql, row, this.context)! };
  }

  /** One issue, or null. */
  async get(id: string): Promise<IssueView | null> {
    const row = rowIdOf(id);
    return row === null ? null : readIssue(this.sql, row, this.context);
  }

  /** Issues by filter, unresolved first. */
  async list(filter: IssueFilter): Promise<IssueView[]> {
    return listIssues(this.sql, filter, this.context);
  }

  /** Unresolved issues by condition and severity (metrics). */
  async openCounts(): Promise<ReturnType<typeof openCounts>> {
    return openCounts(this.sql);
  }

  /** Hands unsent changes to notifyIssueChange in order, marking each sent after it resolves; a failure stops the run and retries NOTIFY_RETRY_MS later. Never throws. */
  override async alarm(): Promise<void> {
    const batch = unsentChanges(this.sql, CHANGES_PER_RUN);
    for (const change of batch) {
      try {
        await this.notify(this.env, change);
      } catch (e) {
        log("warn", "issue change not handed to the channels; retrying", { change: change.id, error: e instanceof Error ? e.message : String(e) });
        await this.ctx.storage.setAlarm(Date.now() + NOTIFY_RETRY_MS);
        return;
      }
      markSent(this.sql, change.id, Date.now());
    }
    if (hasUnsent(this.sql)) await this.ctx.storage.setAlarm(Date.now());
  }

  /** Arms the alarm now when a change waits and no alarm is armed. */
  private async arm(): Promise<void> {
    if (!hasUnsent(this.sql)) return;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now());
  }
}
