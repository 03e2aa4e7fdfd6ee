import { createExecutionContext, createScheduledController, env, runDurableObjectAlarm, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { CRON } from "../../src/cron";
import { admin, freshId, putSource } from "../support/helpers";
import {
  centrepointBlock,
  drainLedger,
  envelopesTo,
  newTargetOf,
  pullerOf,
  push,
  rawProcessingBody,
  runQueue,
  settle,
  uploadBodyOf,
  useFakeCentrePoint,
  useTestHooks,
} from "../support/pull";
import { historyDelivery, newReconciledSource, reconcilerOf } from "../support/reconcile";

/**
 * Review 2, finding 2: a source with `enabled: false` was refused only at ingress; the Cron Trigger
 * still reconciled it, the Puller still enriched its events and asked for raw data, and its file
 * links still redirected. Disabled now means none of that happens (file links: tested in
 * test/pull/files.test.ts).
 */

const { advance } = useTestHooks(["log", "warn"]);

/** Writes a source with a `centrepoint` block, enabled or not. */
async function putPullSource(id: string, enabled: boolean, block: Record<string, unknown> = {}): Promise<void> {
  await putSource(id, { allowedIps: ["*"], centrepoint: centrepointBlock(block), enabled });
}

/** Runs the Worker's scheduled handler for the reconcile trigger at the current (fake) time. */
async function cronTick(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron: CRON.reconcile, scheduledTime: Date.now() }), env, ctx);
  await waitOnExecutionContext(ctx);
}

describe("a disabled source", () => {
  it("gets no scheduled reconciliation, and a run in progress stops at its next step", async () => {
    const { fake } = useFakeCentrePoint({ maxPageSize: 1 });
    const source = await newReconciledSource({ enabled: false });
    historyDelivery(fake, 1, { responseCode: 401 });
    await cronTick();
    expect(await reconcilerOf(source).reports(5)).toEqual([]);
    expect(fake.requests()).toEqual([]);

    // Enabled, a run starts; disabled while it runs, its next step ends it without calling CentrePoint.
    await putPullSource(source, true);
    for (let n = 2; n < 30; n++) historyDelivery(fake, n, { responseCode: 401 });
    await cronTick();
    await runDurableObjectAlarm(reconcilerOf(source));
    expect(await reconcilerOf(source).reports(1)).toMatchObject([{ complete: false }]);
    await putPullSource(source, false);
    const before = fake.requests().length;
    await runDurableObjectAlarm(reconcilerOf(source));
    expect(fake.requests().length).toBe(before);
    expect(await reconcilerOf(source).reports(1)).toMatchObject([{ complete: true, outcome: "failed", firstError: expect.stringContaining("disabled") }]);
  });

  it("is refused by POST /admin/sources/:id/reconcile with 409 source_disabled, without calling CentrePoint", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource({ enabled: false });
    historyDelivery(fake, 1, { responseCode: 401 });
    const res = await admin(`/sources/${source}/reconcile`, { method: "POST" });
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({
      error: "source_disabled",
      message: `Source "${source}" is disabled (enabled: false): it is not reconciled. Enable it with PUT /admin/sources/${source} first.`,
    });
    expect(fake.requests()).toEqual([]);
    expect(await reconcilerOf(source).reports(5)).toEqual([]);
    const doc = (await (await admin("/openapi.json")).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(JSON.stringify(doc.paths["/admin/sources/{id}/reconcile"]!.post!.responses["409"])).toContain("source_disabled");
  });

  it("makes no enrichment lookups: its pending jobs wait, and run once it is enabled again", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = freshId("p");
    await putPullSource(source, true);
    const target = await newTargetOf(source, { enrich: ["subject"], enrichRequired: true });
    const id = await push(source, uploadBodyOf(2301, 93001));
    await drainLedger(source); // the job reaches the Puller
    await putPullSource(source, false);
    advance(80 * 3_600_000); // past the job's 72 h of retries: a paused job does not give up
    await runDurableObjectAlarm(pullerOf(source));
    expect(fake.requests()).toEqual([]);
    expect(await pullerOf(source).job(id)).toMatchObject({ state: "pending", attempts: 0 });

    await putPullSource(source, true);
    await settle(source, [target]);
    expect(fake.subjectLookups("189", "2301")).toBe(1);
    expect(await pullerOf(source).job(id)).toMatchObject({ state: "settled", outcome: "complete" });
    expect(envelopesTo(sent, target)[0]!.data.enrichment).toMatchObject({ status: "complete" });
  });

  it("makes no raw-data request: the request waits in the client's queue until the source is enabled", async () => {
    const { fake } = useFakeCentrePoint();
    const block = { autoRequest: { fileFormat: "avro" }, clientIdEnv: "TEST_CP_CLIENT_ID_2" };
    const source = freshId("p");
    await putPullSource(source, true, block);
    await push(source, rawProcessingBody(2302, "2100-01-01T00:00:00Z", "2100-01-01T01:00:00Z"), "raw_processing_complete");
    await putPullSource(source, false, block);
    await drainLedger(source); // the Puller queues the request with the client
    await runQueue({ clientIdEnv: "TEST_CP_CLIENT_ID_2" });
    expect(fake.requests().filter((r) => r.method === "POST" && r.path.includes("RawActivityRequests"))).toEqual([]);
    const queued = await admin(`/sources/${source}/raw-requests`);
    expect(((await queued.json()) as { items: unknown[] }).items).toMatchObject([{ state: "queued", error: expect.stringContaining("disabled") }]);

    await putPullSource(source, true, block);
    advance(5 * 60_000);
    await runQueue({ clientIdEnv: "TEST_CP_CLIENT_ID_2" });
    expect(fake.requests().filter((r) => r.method === "POST" && r.path.includes("RawActivityRequests"))).toHaveLength(1);
  });
});
