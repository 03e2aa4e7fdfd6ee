import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CentrePointGateway } from "../../src/pull/gateway";
import { RELAY_LIMIT_PER_MINUTE, WINDOW_MS } from "../../src/providers/centrepoint/api/budget";
import { admin, ledgerOf } from "../support/helpers";
import { cpClientOf, newPullSource, newTargetOf, pullerOf, push, uploadBodyOf, useFakeCentrePoint, useTestHooks, busiestWindow } from "../support/pull";

/**
 * The rate budget of one API client (src/pull/gateway.ts over api/budget.ts): every source using the
 * client asks the same CentrePointGateway before each request, so together they stay under the
 * relay's ceiling (450 a minute, below CentrePoint's 500), each with a fair share.
 */

const { advance } = useTestHooks(["log", "warn"]);

/**
 * Each test starts later than everything the earlier ones did (the clock is reset to the same
 * instant before each test, but the clients' budgets, in memory, keep their grants): their grants
 * are out of the window.
 */
let offset = 0;
function startLater(): void {
  offset += 10 * WINDOW_MS;
  advance(offset);
}

/** Two sources asking as fast as they can for `minutes`, in 50 ms steps; returns the grant times of each. */
async function contend(client: ReturnType<typeof cpClientOf>, minutes: number): Promise<{ a: number[]; b: number[] }> {
  return runInDurableObject(client, async (instance: CentrePointGateway) => {
    const granted = { a: [] as number[], b: [] as number[] };
    const steps = (minutes * WINDOW_MS) / 50;
    for (let i = 0; i < steps; i++) {
      for (const source of ["a", "b"] as const) if ((await instance.acquire(`budget-${source}`)).ok) granted[source].push(Date.now());
      advance(50);
    }
    return granted;
  });
}

describe("the shared budget of an API client", () => {
  it("never grants more than 450 requests in any minute, across every source of the client", async () => {
    startLater();
    const granted = await contend(cpClientOf({ clientIdEnv: "TEST_CP_CLIENT_ID_2" }), 3);
    const all = [...granted.a, ...granted.b].sort((x, y) => x - y);
    expect(busiestWindow(all)).toBe(RELAY_LIMIT_PER_MINUTE);
    expect(busiestWindow(all)).toBeLessThan(500);
  }, 30_000);

  it("shares it fairly between two sources that both want more than their share", async () => {
    startLater();
    const granted = await contend(cpClientOf({ clientIdEnv: "TEST_CP_CLIENT_ID_2" }), 4);
    // In the last two minutes (past the first burst), each gets close to half.
    const since = Date.now() - 2 * WINDOW_MS;
    const [a, b] = [granted.a.filter((t) => t > since).length, granted.b.filter((t) => t > since).length];
    expect(a + b).toBeLessThanOrEqual(2 * RELAY_LIMIT_PER_MINUTE);
    expect(Math.min(a, b)).toBeGreaterThanOrEqual(0.4 * (a + b));
  }, 30_000);

  it("is one object for sources naming the same client-id secret, another for a different one", async () => {
    startLater();
    const { fake } = useFakeCentrePoint();
    const [one, two] = [await newPullSource(), await newPullSource()];
    const other = await newPullSource({ clientIdEnv: "TEST_CP_CLIENT_ID_2" });
    for (const s of [one, two, other]) await newTargetOf(s, { enrich: ["subject"] });
    for (const [i, s] of [one, two, other].entries()) await push(s, uploadBodyOf(7000 + i, 1));
    for (const s of [one, two, other]) {
      await runDurableObjectAlarm(ledgerOf(s));
      await runDurableObjectAlarm(pullerOf(s));
      await runDurableObjectAlarm(ledgerOf(s)); // waits for the push the stored enrichment started
    }
    const usage = await cpClientOf().budgetUsage();
    expect(Object.keys(usage.bySource).sort()).toEqual([one, two].sort());
    expect(Object.keys((await cpClientOf({ clientIdEnv: "TEST_CP_CLIENT_ID_2" }).budgetUsage()).bySource)).toContain(other);
    expect(fake.subjectLookups("189", "7000") + fake.subjectLookups("189", "7001") + fake.subjectLookups("189", "7002")).toBe(3);
  });

  it("holds back a source's lookups and its reconciliation once the client's budget is spent by another source", async () => {
    const { fake } = useFakeCentrePoint();
    startLater(); // the busy source is alone in the window and may take it all
    const busy = await newPullSource();
    const quiet = await newPullSource();
    await newTargetOf(quiet, { enrich: ["subject"] });
    await runInDurableObject(cpClientOf(), async (instance: CentrePointGateway) => {
      for (let i = 0; i < 600; i++) await instance.acquire(busy);
    });
    expect((await cpClientOf().budgetUsage()).total).toBe(RELAY_LIMIT_PER_MINUTE);
    const id = await push(quiet, uploadBodyOf(7100, 1));
    await runDurableObjectAlarm(ledgerOf(quiet));
    await runDurableObjectAlarm(pullerOf(quiet));
    expect(fake.requests()).toEqual([]);
    const detail = (await (await admin(`/deliveries/${quiet}/${id}`)).json()) as {
      pull: { enrichment: { state: string; stored: { errors: Record<string, string> } } };
    };
    expect(detail.pull.enrichment.state).toBe("pending");
    expect(detail.pull.enrichment.stored.errors.subject).toContain("rate limit");
    const run = (await (await admin(`/sources/${quiet}/reconcile`, { method: "POST" })).json()) as { complete: boolean };
    expect(run.complete).toBe(false);
    expect(fake.requests()).toEqual([]);
    // A minute later the budget has room again: the lookup goes through.
    advance(WINDOW_MS + 1_000);
    await runDurableObjectAlarm(pullerOf(quiet));
    await runDurableObjectAlarm(ledgerOf(quiet)); // waits for the push the stored enrichment started
    expect(fake.subjectLookups("189", "7100")).toBe(1);
  });
});
