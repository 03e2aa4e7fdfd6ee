import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RawRequestView } from "../../src/pull/requests";
import { admin, ledgerOf } from "../support/helpers";
import { newPullSource, push, rawProcessingBody, runQueue, useFakeCentrePoint, useTestHooks } from "../support/pull";

/** CentrePoint's 10 active requests per client (src/pull/requests.ts): the rest wait durably and go as slots free. */

const { advance } = useTestHooks(["log", "warn"]);

async function states(source: string): Promise<Record<string, number>> {
  const items = ((await (await admin(`/sources/${source}/raw-requests?limit=100`)).json()) as { items: RawRequestView[] }).items;
  const out: Record<string, number> = {};
  for (const r of items) out[r.state] = (out[r.state] ?? 0) + 1;
  return out;
}

/** Twelve raw_processing events of twelve subjects; returns their delivery ids in order. */
async function twelve(source: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 12; i++)
    ids.push(await push(source, rawProcessingBody(5000 + i, "2099-12-01T00:00:00Z", "2099-12-01T01:00:00Z"), "raw_processing_complete"));
  await runDurableObjectAlarm(ledgerOf(source));
  return ids;
}

describe("the 10 active requests of a client", () => {
  it("submits 10 of 12 events' requests, queues 2 durably, and submits them in order as completions free slots", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const ids = await twelve(source);
    await runQueue();
    await runQueue(); // a second run changes nothing while 10 are active
    expect(fake.rawRequests()).toHaveLength(10);
    expect(await states(source)).toEqual({ active: 10, queued: 2 });
    expect(fake.requests().filter((r) => r.method === "POST" && r.status === 400)).toEqual([]); // never asked over the limit

    advance(61_000);
    const hooks = fake.completeDue();
    expect(hooks).toHaveLength(10);
    await push(source, hooks[0]!.body, "data_retrieval_complete"); // one slot frees
    await runQueue();
    expect(fake.rawRequests()).toHaveLength(11);
    expect(fake.rawRequests()[10]!.subjectId).toBe(5010);
    expect(await states(source)).toEqual({ active: 10, queued: 1, completed: 1 });
    for (const h of hooks.slice(1)) await push(source, h.body, "data_retrieval_complete");
    await runQueue();
    expect(fake.rawRequests().map((r) => r.subjectId)).toEqual(Array.from({ length: 12 }, (_, i) => 5000 + i));
    expect(await states(source)).toEqual({ active: 2, completed: 10 });
    expect(ids).toHaveLength(12);
  });

  it("waits for a slot when CentrePoint says 10 are active (requests made outside the relay), and submits later", async () => {
    const { fake } = useFakeCentrePoint({ maxActiveRequests: 3 });
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" }, clientIdEnv: "TEST_CP_CLIENT_ID_2" });
    for (let i = 0; i < 5; i++) await push(source, rawProcessingBody(6000 + i, "2099-12-02T00:00:00Z", "2099-12-02T01:00:00Z"), "raw_processing_complete");
    await runDurableObjectAlarm(ledgerOf(source));
    await runQueue({ clientIdEnv: "TEST_CP_CLIENT_ID_2" });
    expect(fake.rawRequests()).toHaveLength(3);
    expect(await states(source)).toEqual({ active: 3, queued: 2 });
    advance(61_000);
    for (const h of fake.completeDue()) await push(source, h.body, "data_retrieval_complete");
    await runQueue({ clientIdEnv: "TEST_CP_CLIENT_ID_2" });
    expect(await states(source)).toEqual({ active: 2, completed: 3 });
  });
});
