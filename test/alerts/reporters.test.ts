import { createExecutionContext, createScheduledController, env, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { evaluateIssues } from "../../src/admin/service/issues";
import { alertsOf } from "../../src/alerts/report";
import { CRON } from "../../src/cron";
import worker from "../../src/index";
import { issuesOf } from "../support/alerts";
import { clockForEachTest } from "../support/clock";
import { freshId, ledgerOf, postWebhook, putSource } from "../support/helpers";
import { recordInput } from "../support/ledger";
import { fakeTarget, fireAlarm, makeItem, newTarget } from "../support/outbox";

/**
 * Event conditions reported where they happen (a dispatch going dead in the outbox, refusals at
 * ingress) open their issue at once, off the accepted-event path; the one-minute Cron Trigger
 * evaluates the objects' reads and resolves what cleared.
 */

clockForEachTest({ quiet: ["log", "warn"] });

describe("reported where they happen", () => {
  it("a dispatch going dead opens dead_letters for its target at once", async () => {
    fakeTarget(() => new Response("down", { status: 500 }));
    const { id, stub } = await newTarget({ retry: { maxAttempts: 1 } });
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    expect((await stub.health()).counts.dead).toBe(1);
    expect(await issuesOf(`target:${id}`)).toMatchObject([
      { condition: "dead_letters", severity: "critical", state: "open", count: 1, summary: "1 dispatch went dead" },
    ]);
  });

  it("five refused deliveries of a source within 10 minutes open refused_deliveries", async () => {
    const source = freshId("s");
    await putSource(source);
    for (let i = 0; i < 4; i++) expect((await postWebhook(source, { headers: { "x-actigraph-signature": "d3Jvbmc=" } })).status).toBe(401);
    // Four are not enough (default refusedPerTenMinutes: 5).
    const four = await alertsOf(env).list({ object: `source:${source}`, limit: 10 });
    expect(four).toEqual([]);
    expect((await postWebhook(source, { headers: { "x-actigraph-signature": "d3Jvbmc=" } })).status).toBe(401);
    expect(await issuesOf(`source:${source}`)).toMatchObject([{ condition: "refused_deliveries", state: "open" }]);
  });

  it("an integrity check that finds a broken record opens integrity_failed for its source at once", async () => {
    const source = freshId("s");
    await putSource(source);
    await ledgerOf(source).record(recordInput({ source, deliveryId: "x" }));
    await runInDurableObject(ledgerOf(source), (_i, state) => {
      state.storage.sql.exec("UPDATE deliveries SET body = ? WHERE delivery_id = 'x'", new TextEncoder().encode("{}"));
    });
    expect((await ledgerOf(source).checkIntegrity({ full: true })).report).toMatchObject({ ok: false });
    expect(await issuesOf(`source:${source}`)).toMatchObject([{ condition: "integrity_failed", severity: "critical", state: "open" }]);
  });
});

describe("the one-minute evaluation", () => {
  it("is the Cron Trigger * * * * *", async () => {
    const { id, stub } = await newTarget({ retry: { maxAttempts: 1 } });
    fakeTarget(() => new Response("down", { status: 500 }));
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: CRON.issues, scheduledTime: Date.now() }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(CRON.issues).toBe("* * * * *");
    expect(await alertsOf(env).list({ object: `target:${id}`, limit: 10 })).toMatchObject([{ condition: "dead_letters", state: "open" }]);
  });

  it("resolves dead_letters once the dead dispatch is replayed and delivered", async () => {
    const target = fakeTarget(() => new Response("down", { status: 500 }));
    const { id, stub } = await newTarget({ retry: { maxAttempts: 1 } });
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    await evaluateIssues(env, Date.now());
    const [issue] = await alertsOf(env).list({ object: `target:${id}`, limit: 10 });
    expect(issue).toMatchObject({ condition: "dead_letters", state: "open" });

    target.answer(() => new Response("ok"));
    await stub.replayWhere({ state: "dead", limit: 10 });
    await fireAlarm(stub);
    expect((await stub.health()).counts.dead).toBe(0);
    await evaluateIssues(env, Date.now() + 60_000);
    expect(await alertsOf(env).get(issue!.issueId)).toMatchObject({ state: "resolved", resolvedBy: "system" });
  });
});
