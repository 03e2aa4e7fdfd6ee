import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { clockForEachTest } from "../support/clock";
import { describe, expect, it, vi } from "vitest";
import type { Alerts } from "../../src/alerts/alerts";
import type { SourceReading, TargetReading } from "../../src/alerts/conditions";
import type { IssueChange } from "../../src/alerts/types";
import { type AlertingConfig, DEFAULT_ALERTING } from "../../src/config/alerting";
import { evaluateAt, freshAlerts, withAlerting, issueEvents, MINUTE, sourceReading, T0, targetReading } from "../support/alerts";

/**
 * The issues engine (src/alerts/): each condition opens its issue and resolves it when it clears,
 * with the clock passed in; one issue per (condition, object); flapping reopens the same issue;
 * acknowledging; and the issue_events outbox surviving a restart.
 */

clockForEachTest();

type Readings = { sources?: SourceReading[]; targets?: TargetReading[] };

interface Case {
  condition: string;
  object: Record<string, string>;
  bad: Readings;
  good: Readings;
  /** How long the condition must last before it opens. */
  holdMinutes: number;
  config?: AlertingConfig;
}

const t = (over: Parameters<typeof targetReading>[1]) => ({ targets: [targetReading("t1", over)] });
const s = (over: Parameters<typeof sourceReading>[1]) => ({ sources: [sourceReading("s1", over)] });
const healthyTarget = t({});
const healthySource = s({});

const STATE_CASES: Case[] = [
  { condition: "dead_letters", object: { target: "t1" }, bad: t({ counts: { dead: 2, held: 0 } }), good: healthyTarget, holdMinutes: 0 },
  {
    condition: "breaker_open",
    object: { target: "t1" },
    bad: t({ breaker: { status: "open", consecutiveFailures: 5 } }),
    good: healthyTarget,
    holdMinutes: 10,
  },
  { condition: "backlog_age", object: { target: "t1" }, bad: t({ oldestPendingAgeMs: 16 * MINUTE }), good: t({ oldestPendingAgeMs: MINUTE }), holdMinutes: 0 },
  { condition: "held", object: { target: "t1" }, bad: t({ counts: { dead: 0, held: 3 }, heldBy: "gone" }), good: healthyTarget, holdMinutes: 60 },
  { condition: "held", object: { source: "s1" }, bad: s({ enrichmentHeld: 2 }), good: healthySource, holdMinutes: 60 },
  {
    condition: "source_silent",
    object: { source: "s1" },
    bad: s({ stats: { lastReceivedAt: T0 - 3 * 60 * MINUTE } }),
    good: s({ stats: { lastReceivedAt: T0 + 5 * MINUTE } }),
    holdMinutes: 0,
    config: { ...DEFAULT_ALERTING, silentHours: { s1: 2 } },
  },
  {
    condition: "registration_mismatch",
    object: { source: "s1" },
    bad: s({ reconcile: { lastFinished: null, registration: { problems: [{ message: "points elsewhere" }], error: null, upstream: null } } }),
    good: healthySource,
    holdMinutes: 0,
  },
  {
    condition: "reconcile_failed",
    object: { source: "s1" },
    bad: s({ reconcile: { lastFinished: { outcome: "failed", backfilled: 0, firstError: "timeout", upstream: null }, registration: null } }),
    good: healthySource,
    holdMinutes: 0,
  },
  {
    condition: "reconcile_backfilled",
    object: { source: "s1" },
    bad: s({ reconcile: { lastFinished: { outcome: "ok", backfilled: 3, firstError: null, upstream: null }, registration: null } }),
    good: healthySource,
    holdMinutes: 0,
  },
  {
    condition: "integrity_failed",
    object: { source: "s1" },
    bad: s({ lifecycle: { archive: { halted: null }, integrity: { report: { ok: false, firstBroken: { seq: 7, reason: "hash mismatch" } } } } }),
    good: healthySource,
    holdMinutes: 0,
  },
  {
    condition: "archive_halted",
    object: { source: "s1" },
    bad: s({ lifecycle: { archive: { halted: "segment exists with other contents" }, integrity: { report: null } } }),
    good: healthySource,
    holdMinutes: 0,
  },
];

describe("each state condition opens its issue and resolves it when it clears", () => {
  it.each(STATE_CASES.map((c) => [`${c.condition} on ${JSON.stringify(c.object)}`, c] as const))("%s", async (_name, c) => {
    const alerts = freshAlerts();
    const config = c.config ?? DEFAULT_ALERTING;
    await evaluateAt(alerts, T0, c.bad, config);
    if (c.holdMinutes > 0) {
      // Seen, but not for long enough yet.
      await evaluateAt(alerts, T0 + (c.holdMinutes - 1) * MINUTE, c.bad, config);
      expect(await alerts.list({ limit: 10 })).toEqual([]);
    }
    const openedAt = T0 + c.holdMinutes * MINUTE;
    await evaluateAt(alerts, openedAt, c.bad, config);
    const [issue, ...rest] = await alerts.list({ limit: 10 });
    expect(rest).toEqual([]);
    expect(issue).toMatchObject({ condition: c.condition, object: c.object, state: "open", count: 1, firstSeenAt: new Date(openedAt).toISOString() });
    expect(issue!.url).toBe(`https://relay.example.org/admin/ui/${"target" in c.object ? "targets/t1" : "sources/s1"}`);

    await evaluateAt(alerts, openedAt + 10 * MINUTE, c.good, config);
    expect(await alerts.get(issue!.issueId)).toMatchObject({
      state: "resolved",
      resolvedBy: "system",
      resolvedAt: new Date(openedAt + 10 * MINUTE).toISOString(),
    });
    expect((await issueEvents(alerts)).map((e) => e.type)).toEqual(["issue.opened", "issue.resolved"]);
  });

  it("a condition seen with a gap starts its hold again", async () => {
    const alerts = freshAlerts();
    const open = t({ breaker: { status: "open", consecutiveFailures: 5 } });
    await evaluateAt(alerts, T0, open);
    await evaluateAt(alerts, T0 + 5 * MINUTE, healthyTarget);
    await evaluateAt(alerts, T0 + 10 * MINUTE, open);
    expect(await alerts.list({ limit: 10 })).toEqual([]);
    await evaluateAt(alerts, T0 + 20 * MINUTE, open);
    expect(await alerts.list({ limit: 10 })).toMatchObject([{ condition: "breaker_open", state: "open" }]);
  });

  it("a target whose health could not be read keeps its issues", async () => {
    const alerts = freshAlerts();
    await evaluateAt(alerts, T0, t({ counts: { dead: 1, held: 0 } }));
    await evaluateAt(alerts, T0 + MINUTE, { targets: [{ id: "t1", health: null }] });
    expect(await alerts.list({ limit: 10 })).toMatchObject([{ condition: "dead_letters", state: "open" }]);
  });

  it("a disabled condition opens nothing, and resolves what it had open", async () => {
    const alerts = freshAlerts();
    const dead = t({ counts: { dead: 1, held: 0 } });
    await evaluateAt(alerts, T0, dead);
    await withAlerting({ conditions: { dead_letters: { enabled: false } } }, () => evaluateAt(alerts, T0 + MINUTE, dead));
    expect(await alerts.list({ limit: 10 })).toMatchObject([{ condition: "dead_letters", state: "resolved" }]);
  });

  it("takes its severity from the alerting document", async () => {
    const alerts = freshAlerts();
    await withAlerting({ conditions: { dead_letters: { severity: "info" } } }, () => evaluateAt(alerts, T0, t({ counts: { dead: 1, held: 0 } })));
    expect(await alerts.list({ limit: 10 })).toMatchObject([{ condition: "dead_letters", severity: "info" }]);
  });
});

describe("event conditions open at once", () => {
  it("dead_letters reported by the outbox opens at once, counts each report, and resolves when the evaluation finds none", async () => {
    const alerts = freshAlerts();
    await alerts.report({ condition: "dead_letters", object: { target: "t1" }, summary: "1 dead dispatch", count: 1 }, T0);
    await alerts.report({ condition: "dead_letters", object: { target: "t1" }, summary: "2 dead dispatches", count: 1 }, T0 + MINUTE);
    const [issue] = await alerts.list({ limit: 10 });
    expect(issue).toMatchObject({ state: "open", count: 2, summary: "2 dead dispatches", lastSeenAt: new Date(T0 + MINUTE).toISOString() });
    await evaluateAt(alerts, T0 + 2 * MINUTE, healthyTarget);
    expect(await alerts.get(issue!.issueId)).toMatchObject({ state: "resolved" });
  });

  it("refused_deliveries opens at refusedPerTenMinutes refusals within 10 minutes, and resolves when the window drops below", async () => {
    const alerts = freshAlerts();
    for (let i = 0; i < 4; i++) await alerts.countRefusal("s1", T0 + i * MINUTE);
    expect(await alerts.list({ limit: 10 })).toEqual([]);
    await alerts.countRefusal("s1", T0 + 4 * MINUTE);
    const [issue] = await alerts.list({ limit: 10 });
    expect(issue).toMatchObject({ condition: "refused_deliveries", object: { source: "s1" }, severity: "critical", state: "open" });
    // Still 5 in the last 10 minutes at T0+9m; one left the window at T0+10m.
    await evaluateAt(alerts, T0 + 9 * MINUTE, healthySource);
    expect(await alerts.get(issue!.issueId)).toMatchObject({ state: "open" });
    await evaluateAt(alerts, T0 + 10 * MINUTE, healthySource);
    expect(await alerts.get(issue!.issueId)).toMatchObject({ state: "resolved", resolvedBy: "system" });
  });

  it("refusals spread over more than 10 minutes open nothing", async () => {
    const alerts = freshAlerts();
    for (let i = 0; i < 8; i++) await alerts.countRefusal("s1", T0 + i * 3 * MINUTE);
    expect(await alerts.list({ limit: 10 })).toEqual([]);
  });

  it.each(["enrichment_failed", "raw_request_failed", "centrepoint_auth_failed"] as const)(
    "%s opens when reported and resolves after an hour without another report",
    async (condition) => {
      const alerts = freshAlerts();
      await alerts.report({ condition, object: { source: "s1" }, summary: "CentrePoint answered 500" }, T0);
      const [issue] = await alerts.list({ limit: 10 });
      expect(issue).toMatchObject({ condition, state: "open" });
      await evaluateAt(alerts, T0 + 59 * MINUTE, healthySource);
      expect(await alerts.get(issue!.issueId)).toMatchObject({ state: "open" });
      await evaluateAt(alerts, T0 + 60 * MINUTE, healthySource);
      expect(await alerts.get(issue!.issueId)).toMatchObject({ state: "resolved", resolvedBy: "system" });
    },
  );

  it("centrepoint_auth_failed is found in a registration check CentrePoint refused with 401", async () => {
    const alerts = freshAlerts();
    const refused = s({ reconcile: { lastFinished: null, registration: { problems: [], error: "refused", upstream: { status: 401, endpoint: "/token" } } } });
    await evaluateAt(alerts, T0, refused);
    expect(await alerts.list({ limit: 10 })).toMatchObject([{ condition: "centrepoint_auth_failed", object: { source: "s1" }, state: "open" }]);
  });

  // The token endpoint answers a rotated client secret with 400 invalid_client (OAuth2), not 401.
  it.each([
    { status: 400, endpoint: "/connect/token", refused: true },
    { status: 403, endpoint: "/v3/Studies/189/Webhooks/74/History", refused: true },
    { status: 400, endpoint: "/v3/Studies/189/Webhooks/74/History", refused: false },
    { status: 500, endpoint: "/connect/token", refused: false },
  ])("a failed reconciliation answered $status by $endpoint: centrepoint_auth_failed $refused", async ({ status, endpoint, refused }) => {
    const alerts = freshAlerts();
    const failed = s({
      reconcile: { lastFinished: { outcome: "failed", backfilled: 0, firstError: "refused", upstream: { status, endpoint } }, registration: null },
    });
    await evaluateAt(alerts, T0, failed);
    const conditions = (await alerts.list({ limit: 10 })).map((i) => i.condition).sort();
    expect(conditions).toEqual(refused ? ["centrepoint_auth_failed", "reconcile_failed"] : ["reconcile_failed"]);
  });
});

describe("dedupe and flapping", () => {
  const dead = t({ counts: { dead: 1, held: 0 } });

  it("one issue per condition and object, however often it is seen", async () => {
    const alerts = freshAlerts();
    for (let i = 0; i < 5; i++) await evaluateAt(alerts, T0 + i * MINUTE, dead);
    await evaluateAt(alerts, T0 + 5 * MINUTE, { targets: [targetReading("t2", { counts: { dead: 1, held: 0 } })] });
    const issues = await alerts.list({ limit: 10 });
    expect(issues.map((i) => [i.condition, i.object])).toEqual([
      ["dead_letters", { target: "t2" }],
      ["dead_letters", { target: "t1" }],
    ]);
    expect((await issueEvents(alerts)).filter((e) => e.type === "issue.opened")).toHaveLength(2);
  });

  it("a condition that returns less than 5 minutes after it cleared reopens the same issue", async () => {
    const alerts = freshAlerts();
    await evaluateAt(alerts, T0, dead);
    const [first] = await alerts.list({ limit: 10 });
    await evaluateAt(alerts, T0 + MINUTE, healthyTarget);
    await evaluateAt(alerts, T0 + 5 * MINUTE + MINUTE - 1, dead);
    const issues = await alerts.list({ limit: 10 });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ issueId: first!.issueId, state: "open", count: 2, firstSeenAt: new Date(T0).toISOString() });
    expect((await issueEvents(alerts)).map((e) => e.type)).toEqual(["issue.opened", "issue.resolved", "issue.opened"]);
  });

  it("a condition that returns 5 minutes or more after it cleared is a new issue", async () => {
    const alerts = freshAlerts();
    await evaluateAt(alerts, T0, dead);
    await evaluateAt(alerts, T0 + MINUTE, healthyTarget);
    await evaluateAt(alerts, T0 + 6 * MINUTE, dead);
    const issues = await alerts.list({ limit: 10 });
    expect(issues.map((i) => i.state)).toEqual(["open", "resolved"]);
    expect(issues[0]!.issueId).not.toBe(issues[1]!.issueId);
  });
});

describe("acknowledge and resolve", () => {
  const dead = t({ counts: { dead: 1, held: 0 } });

  it("acknowledging records by whom, when and the note; the issue stays acknowledged while its condition lasts and resolves when it clears", async () => {
    const alerts = freshAlerts();
    await evaluateAt(alerts, T0, dead);
    const [issue] = await alerts.list({ limit: 10 });
    const acked = await alerts.acknowledge(issue!.issueId, "alice@site.org", "replaying after the EDC fix", T0 + MINUTE);
    expect(acked).toMatchObject({
      ok: true,
      issue: {
        state: "acknowledged",
        acknowledgedBy: "alice@site.org",
        note: "replaying after the EDC fix",
        acknowledgedAt: new Date(T0 + MINUTE).toISOString(),
      },
    });
    await evaluateAt(alerts, T0 + 2 * MINUTE, dead);
    expect(await alerts.get(issue!.issueId)).toMatchObject({ state: "acknowledged" });
    await evaluateAt(alerts, T0 + 3 * MINUTE, healthyTarget);
    expect(await alerts.get(issue!.issueId)).toMatchObject({ state: "resolved", resolvedBy: "system" });
    const events = await issueEvents(alerts);
    expect(events.map((e) => e.type)).toEqual(["issue.opened", "issue.acknowledged", "issue.resolved"]);
    expect(JSON.parse(events[1]!.snapshot)).toMatchObject({ state: "acknowledged", acknowledgedBy: "alice@site.org", note: "replaying after the EDC fix" });
  });

  it("refuses to acknowledge an issue twice, a resolved one, or one that does not exist", async () => {
    const alerts = freshAlerts();
    await evaluateAt(alerts, T0, dead);
    const [issue] = await alerts.list({ limit: 10 });
    await alerts.acknowledge(issue!.issueId, "alice@site.org", null, T0);
    expect(await alerts.acknowledge(issue!.issueId, "bob@site.org", null, T0)).toEqual({ ok: false, reason: "acknowledged" });
    await alerts.resolve(issue!.issueId, "bob@site.org", T0);
    expect(await alerts.acknowledge(issue!.issueId, "bob@site.org", null, T0)).toEqual({ ok: false, reason: "resolved" });
    expect(await alerts.acknowledge("issue-999", "bob@site.org", null, T0)).toEqual({ ok: false, reason: "not_found" });
    expect(await alerts.acknowledge("nonsense", "bob@site.org", null, T0)).toEqual({ ok: false, reason: "not_found" });
  });

  it("resolving by hand records by whom; a condition still true reopens the same issue at the next evaluation", async () => {
    const alerts = freshAlerts();
    await evaluateAt(alerts, T0, dead);
    const [issue] = await alerts.list({ limit: 10 });
    expect(await alerts.resolve(issue!.issueId, "bob@site.org", T0 + MINUTE)).toMatchObject({
      ok: true,
      issue: { state: "resolved", resolvedBy: "bob@site.org" },
    });
    await evaluateAt(alerts, T0 + 2 * MINUTE, dead);
    expect(await alerts.get(issue!.issueId)).toMatchObject({ state: "open" });
  });

  it("filters by state, severity and object", async () => {
    const alerts = freshAlerts();
    await evaluateAt(alerts, T0, {
      targets: [targetReading("t1", { counts: { dead: 1, held: 0 } }), targetReading("t2", { oldestPendingAgeMs: 60 * MINUTE })],
    });
    const [deadIssue] = await alerts.list({ object: "target:t1", limit: 10 });
    await alerts.acknowledge(deadIssue!.issueId, "alice@site.org", null, T0);
    expect((await alerts.list({ state: "open", limit: 10 })).map((i) => i.condition)).toEqual(["backlog_age"]);
    expect((await alerts.list({ severity: "critical", limit: 10 })).map((i) => i.condition)).toEqual(["dead_letters"]);
    expect((await alerts.list({ object: "target:t2", limit: 10 })).map((i) => i.condition)).toEqual(["backlog_age"]);
  });
});

describe("notifications of state changes", () => {
  it("a change written but not yet handed on is handed on after a restart, once, with a stable id", async () => {
    const alerts = freshAlerts();
    // The first instance dies before it can hand the change on (here: its channels fail).
    await runInDurableObject(alerts, (instance: Alerts) => {
      instance.notify = async () => {
        throw new Error("process died");
      };
    });
    await alerts.report({ condition: "dead_letters", object: { target: "t1" }, summary: "1 dead dispatch" }, T0);
    await runDurableObjectAlarm(alerts);
    expect((await issueEvents(alerts)).map((e) => e.sent_at)).toEqual([null]);

    await evictDurableObject(alerts);
    const seen: IssueChange[] = [];
    await runInDurableObject(alerts, (instance: Alerts) => {
      instance.notify = async (_env, change) => {
        seen.push(change);
        return { channels: [] };
      };
    });
    expect(await runDurableObjectAlarm(alerts)).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      id: "issue-event-1",
      type: "issue.opened",
      timestamp: new Date(T0).toISOString(),
      data: { issueId: "issue-1", condition: "dead_letters", severity: "critical", object: { target: "t1" }, state: "open", count: 1 },
    });
    expect((await issueEvents(alerts)).map((e) => e.sent_at === null)).toEqual([false]);
    // Sent changes are not handed on again.
    await runDurableObjectAlarm(alerts);
    expect(seen).toHaveLength(1);
  });

  it("a failing hand-off stops in order and retries later, without losing the later changes", async () => {
    const alerts = freshAlerts();
    const notify = vi.fn(async (_env: unknown, change: IssueChange) => {
      if (change.id === "issue-event-2") throw new Error("channel down");
      return { channels: [] };
    });
    await runInDurableObject(alerts, (instance: Alerts) => {
      instance.notify = notify;
    });
    await alerts.report({ condition: "dead_letters", object: { target: "t1" }, summary: "dead" }, T0);
    await alerts.report({ condition: "dead_letters", object: { target: "t2" }, summary: "dead" }, T0);
    await alerts.report({ condition: "dead_letters", object: { target: "t3" }, summary: "dead" }, T0);
    await runDurableObjectAlarm(alerts);
    expect((await issueEvents(alerts)).map((e) => e.sent_at !== null)).toEqual([true, false, false]);
    const alarmAt = await runInDurableObject(alerts, (_i, state) => state.storage.getAlarm());
    expect(alarmAt).toBeGreaterThan(Date.now() + 20_000);
  });
});
