import { createExecutionContext, createScheduledController, env, runDurableObjectAlarm, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { CRON } from "../../src/cron";
import wranglerToml from "../../wrangler.toml?raw";
import { putSource } from "../support/helpers";
import { historyDelivery, newReconciledSource, reconcilerOf, useFakeCentrePoint, useTestHooks } from "../support/reconcile";

/** The 5-minute Cron Trigger (src/reconcile/scheduled.ts): which sources are due, and what a tick starts. */

const clock = useTestHooks(["log", "warn"]);

const MINUTE = 60_000;

/** Runs the Worker's scheduled handler for `cron` at the current (fake) time, and waits for what it started. */
async function cronTick(cron: string = CRON.reconcile): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron, scheduledTime: Date.now() }), env, ctx);
  await waitOnExecutionContext(ctx);
}

/** Fires the Reconciler's alarm if one is armed (the run's work). */
async function work(source: string): Promise<void> {
  await runDurableObjectAlarm(reconcilerOf(source));
}

describe("the reconcile Cron Trigger", () => {
  it("is declared in wrangler.toml beside the daily integrity check and the one-minute issue evaluation", () => {
    const crons = /crons = \[([^\]]*)\]/.exec(wranglerToml)?.[1];
    expect(crons).toBe(`"${CRON.integrity}", "${CRON.reconcile}", "${CRON.issues}"`);
  });

  it("starts a run of a source that never ran; its alarm does the work", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    historyDelivery(fake, 1, { responseCode: 401 });
    await cronTick();
    expect(await reconcilerOf(source).reports(5)).toMatchObject([{ trigger: "scheduled", complete: false, pages: 0 }]);
    await work(source);
    expect(await reconcilerOf(source).reports(5)).toMatchObject([{ trigger: "scheduled", complete: true, outcome: "ok", backfilled: 1 }]);
  });

  it("starts the next run only when everyMinutes have passed since the last one started", async () => {
    useFakeCentrePoint();
    const source = await newReconciledSource({}, { reconcile: { everyMinutes: 30, lookbackHours: 24 } });
    await cronTick();
    await work(source);
    for (const step of [5, 5, 5, 5, 5]) {
      clock.advance(step * MINUTE);
      await cronTick();
    }
    expect(await reconcilerOf(source).reports(10)).toHaveLength(1);
    clock.advance(5 * MINUTE); // 30 minutes after the first tick
    await cronTick();
    await work(source);
    expect((await reconcilerOf(source).reports(10)).map((r) => r.trigger)).toEqual(["scheduled", "scheduled"]);
  });

  it("does not start a second run while one is in progress", async () => {
    const { fake } = useFakeCentrePoint({ maxPageSize: 1 });
    const source = await newReconciledSource({}, { reconcile: { everyMinutes: 5, lookbackHours: 24 } });
    for (let n = 0; n < 12; n++) historyDelivery(fake, n);
    await cronTick();
    await work(source); // 10 of 12 pages
    clock.advance(10 * MINUTE);
    await cronTick();
    expect(await reconcilerOf(source).reports(10)).toMatchObject([{ complete: false, pages: 10 }]);
  });

  it("leaves sources with everyMinutes 0, without a block, or with an invalid document alone", async () => {
    const { fake } = useFakeCentrePoint();
    const off = await newReconciledSource({}, { reconcile: { everyMinutes: 0, lookbackHours: 24 } });
    const plain = `plain-${Date.now()}`;
    await putSource(plain);
    const broken = `broken-${Date.now()}`;
    await putSource(broken, { centrepoint: { studyId: 189 } });
    await cronTick();
    expect(fake.requests()).toEqual([]);
    expect(await reconcilerOf(off).reports(5)).toEqual([]);
  });

  it("does not start reconciliations on the daily integrity trigger", async () => {
    const { fake } = useFakeCentrePoint();
    await newReconciledSource();
    await cronTick(CRON.integrity);
    expect(fake.requests()).toEqual([]);
  });
});
