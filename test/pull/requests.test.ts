import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FINISHED_KEPT_MS, MAX_SPLIT_PARTS, enqueueTrigger, markFinished, pruneRequests, type RawRequestView } from "../../src/pull/requests";
import { admin, ledgerOf } from "../support/helpers";
import { verifyFully } from "../support/ledger";
import { outboxOf } from "../support/outbox";
import {
  completeRequests,
  envelopesTo,
  newPullSource,
  newTargetOf,
  push,
  rawProcessingBody,
  runQueue,
  triggerRaw,
  useFakeCentrePoint,
  useTestHooks,
} from "../support/pull";

/**
 * Automatic raw-data requests (src/pull/requests.ts, the CentrePointGateway's queue): the event's
 * range exactly, gt3x split in 15-day parts, one request per subject and range, the completion
 * webhook correlated, requests that end badly reported. One client's queue serves the file's tests,
 * so each uses its own subject and finishes its requests.
 */

const { advance, lines } = useTestHooks(["log", "warn"]);

const DAY = 86_400_000;

/** The source's raw-data requests through the admin API, oldest first. */
async function requestsOf(source: string, limit = 50): Promise<RawRequestView[]> {
  const res = await admin(`/sources/${source}/raw-requests?limit=${limit}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: RawRequestView[] }).items.reverse();
}

/** A delivery's detail through the admin API. */
async function pullOf(source: string, id: string): Promise<Record<string, any>> {
  return ((await (await admin(`/deliveries/${source}/${id}`)).json()) as { pull: Record<string, any> }).pull;
}

describe("automatic raw-data requests", () => {
  it("request exactly the event's range for its subject, and record the tracking id with the triggering delivery", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "csv" } });
    const trigger = await triggerRaw(source, 4001, "2099-12-31T14:08:58Z", "2099-12-31T19:30:25Z");
    const [made] = fake.rawRequests();
    expect(fake.rawRequests()).toHaveLength(1);
    expect(made).toMatchObject({
      fileFormat: "csv",
      studyId: 189,
      subjectId: 4001,
      beginTimestampUtc: "2099-12-31T14:08:58Z",
      endTimestampUtc: "2099-12-31T19:30:25Z",
    });
    const pull = await pullOf(source, trigger);
    expect(pull.rawRequests).toMatchObject([{ state: "active", trackingId: made!.id, triggerDeliveryId: trigger, part: 1, parts: 1, fileFormat: "csv" }]);
    await completeRequests(fake, source, advance);
  });

  it("split a gt3x range longer than 15 days into consecutive requests of at most 15 days covering it", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "gt3x" } });
    const begin = Date.UTC(2099, 10, 1, 6);
    const end = begin + 40 * DAY + 3_600_000;
    await triggerRaw(source, 4002, new Date(begin).toISOString(), new Date(end).toISOString());
    const made = fake.rawRequests().map((r) => ({ begin: Date.parse(r.beginTimestampUtc), end: Date.parse(r.endTimestampUtc), format: r.fileFormat }));
    expect(made).toEqual([
      { begin, end: begin + 15 * DAY, format: "gt3x" },
      { begin: begin + 15 * DAY, end: begin + 30 * DAY, format: "gt3x" },
      { begin: begin + 30 * DAY, end, format: "gt3x" },
    ]);
    expect((await requestsOf(source)).map((r) => `${r.part}/${r.parts} ${r.state}`)).toEqual(["1/3 active", "2/3 active", "3/3 active"]);
    await completeRequests(fake, source, advance);
  });

  it("cap a gt3x split at 100 parts (a device clock reset): the rest is one invalid request with the reason, and the event still goes out", async () => {
    const { fake, sent } = useFakeCentrePoint();
    // A client of its own: this test leaves 100 requests in its queue.
    const block = { autoRequest: { fileFormat: "gt3x" }, clientIdEnv: "TEST_CP_CLIENT_ID_2" };
    const source = await newPullSource(block);
    const target = await newTargetOf(source);
    const begin = Date.UTC(2094, 5, 1);
    const end = begin + 2_000 * DAY;
    const trigger = await push(source, rawProcessingBody(4009, new Date(begin).toISOString(), new Date(end).toISOString()), "raw_processing_complete");
    await runDurableObjectAlarm(ledgerOf(source));
    await runQueue(block);
    await runDurableObjectAlarm(outboxOf(target));
    expect(envelopesTo(sent, target).map((e) => e.id)).toEqual([trigger]);
    const requests = await requestsOf(source, 500);
    expect(requests).toHaveLength(MAX_SPLIT_PARTS + 1);
    const made = requests.slice(0, MAX_SPLIT_PARTS);
    expect(made.map((r) => [r.part, r.parts, Date.parse(r.beginUtc), Date.parse(r.endUtc)])).toEqual(
      made.map((_, i) => [i + 1, MAX_SPLIT_PARTS + 1, begin + i * 15 * DAY, begin + (i + 1) * 15 * DAY]),
    );
    expect(new Set(made.map((r) => r.state))).toEqual(new Set(["active", "queued"]));
    const rest = requests[MAX_SPLIT_PARTS]!;
    expect(rest).toMatchObject({ state: "invalid", part: MAX_SPLIT_PARTS + 1, parts: MAX_SPLIT_PARTS + 1 });
    expect([Date.parse(rest.beginUtc), Date.parse(rest.endUtc)]).toEqual([begin + 1_500 * DAY, end]);
    expect(rest.error).toMatch(/not requested: .*134 parts of 15 days.*at most 100/);
    expect(fake.rawRequests()).toHaveLength(10); // CentrePoint's 10 active; the other 90 wait in the queue
    expect((await pullOf(source, trigger)).rawRequests).toHaveLength(MAX_SPLIT_PARTS + 1);
    expect(lines.some((l) => l.includes("raw-data request not made") && l.includes("134 parts"))).toBe(true);
  });

  it("prune more than 100 finished requests at once, with their triggers", async () => {
    const client = env.CP_CLIENT.get(env.CP_CLIENT.idFromName(`prune-${crypto.randomUUID()}`));
    const left = await runInDurableObject(client, (_, state) => {
      const sql = state.storage.sql;
      const start = Date.now();
      for (let i = 0; i < 150; i++) {
        const at = new Date(Date.UTC(2090, 0, 1) + i * 3_600_000).toISOString();
        const trigger = { deliveryId: `d-${i}`, studyId: "189", subjectId: "4010", fileFormat: "csv" as const, minEventTimestamp: at, maxEventTimestamp: at };
        const [view] = enqueueTrigger(sql, "s", trigger, start);
        markFinished(sql, view!.id, "completed", start, {});
      }
      const pruned = pruneRequests(sql, start + FINISHED_KEPT_MS + 1);
      const count = (table: string) => sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
      return { pruned, requests: count("raw_requests"), triggers: count("raw_triggers") };
    });
    expect(left).toEqual({ pruned: 150, requests: 0, triggers: 0 });
  });

  it("ignore a duplicate trigger: CentrePoint's retry, a resend under a new id, a replay, the ledger's push repeated", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const target = await newTargetOf(source);
    const body = rawProcessingBody(4003, "2099-12-30T00:00:00Z", "2099-12-30T02:00:00Z");
    const first = await push(source, body, "raw_processing_complete");
    await push(source, body, "raw_processing_complete", first); // CentrePoint's retry: a duplicate delivery
    const resend = await push(source, body, "raw_processing_complete"); // a resend from the portal under a new id
    await runDurableObjectAlarm(ledgerOf(source));
    await runQueue();
    await runDurableObjectAlarm(outboxOf(target));
    expect((await admin(`/deliveries/${source}/${first}/replay`, { method: "POST" })).status).toBe(200);
    await runDurableObjectAlarm(outboxOf(target));
    await runDurableObjectAlarm(ledgerOf(source));
    await runQueue();
    expect(fake.rawRequests()).toHaveLength(1);
    const [request] = await requestsOf(source);
    expect(request).toMatchObject({ triggerDeliveryId: first, triggeredBy: [first, resend].sort() });
    expect((await pullOf(source, resend)).rawRequests).toMatchObject([{ trackingId: fake.rawRequests()[0]!.id }]);
    await completeRequests(fake, source, advance);
  });

  it("correlate the completion webhook: its envelope names the triggering delivery, both deliveries show the request, the slot frees", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const target = await newTargetOf(source, { events: ["data_retrieval.*"] });
    const trigger = await triggerRaw(source, 4004, "2099-12-29T00:00:00Z", "2099-12-29T01:00:00Z");
    const [done] = await completeRequests(fake, source, advance);
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(target));
    const [envelope] = envelopesTo(sent, target);
    expect(envelope).toMatchObject({ id: done!.deliveryId, triggerdelivery: trigger, data: { trackingId: done!.trackingId } });
    expect(envelope!.triggersource).toBeUndefined();
    // Recorded so in the ledger (hash-chained), not only added on the way out.
    expect(JSON.parse((await ledgerOf(source).get(done!.deliveryId))!.envelope).triggerdelivery).toBe(trigger);
    const request = { trackingId: done!.trackingId, state: "completed", triggerDeliveryId: trigger, completionDeliveryId: done!.deliveryId };
    expect((await pullOf(source, trigger)).rawRequests).toMatchObject([request]);
    const completion = await pullOf(source, done!.deliveryId);
    expect(completion.completes).toEqual({ source, deliveryId: trigger });
    expect(completion.rawRequests).toMatchObject([request]);
    expect(await verifyFully(ledgerOf(source))).toMatchObject({ ok: true });
  });

  it("report a request CentrePoint cancelled: polling finds it ended in error, and it frees its slot", async () => {
    const { fake } = useFakeCentrePoint({ completionDelayMs: 24 * 3_600_000 });
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const trigger = await triggerRaw(source, 4005, "2099-12-28T00:00:00Z", "2099-12-28T01:00:00Z");
    const [made] = fake.rawRequests();
    advance(6 * 3_600_000);
    expect(fake.cancelRequest(made!.id)).not.toBeNull(); // CentrePoint's 6-hour cancel; no webhook reaches the relay
    await runQueue();
    expect(fake.requests().filter((r) => r.path.toLowerCase() === `/dataretrieval/v3/rawactivityrequests/${made!.id}`)).toHaveLength(1);
    const [request] = await requestsOf(source);
    expect(request).toMatchObject({ state: "error", upstreamStatus: "error", trackingId: made!.id });
    expect(request!.error).toContain("6 hours");
    expect((await pullOf(source, trigger)).rawRequests).toMatchObject([{ state: "error" }]);
    expect(lines.some((l) => l.includes("raw-data request ended in error (found by polling)") && l.includes(made!.id))).toBe(true);
    const metrics = await (await admin("/metrics")).text();
    expect(metrics).toMatch(/relay_raw_requests_total\{client="[^"]+",state="error"\} 1/);
  });

  it("report a request that stays active past CentrePoint's 6 hours as overdue, and give it up after 24 hours", async () => {
    const { fake } = useFakeCentrePoint({ completionDelayMs: 48 * 3_600_000 });
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    await triggerRaw(source, 4006, "2099-12-27T00:00:00Z", "2099-12-27T01:00:00Z");
    for (let h = 0; h < 7; h++) {
      advance(3_600_000);
      await runQueue();
    }
    expect(await requestsOf(source)).toMatchObject([{ state: "active", overdue: true, upstreamStatus: "pending" }]);
    expect(lines.filter((l) => l.includes("raw-data request overdue"))).toHaveLength(1);
    advance(18 * 3_600_000);
    await runQueue();
    expect(await requestsOf(source)).toMatchObject([{ state: "lost", overdue: true }]);
    expect(fake.rawRequests()).toHaveLength(1);
  });

  it("report an event whose range cannot be requested, and request nothing", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const body = JSON.stringify({ study_id: 189, subject_id: 4007, status: "Completed", min_event_timestamp: "not a time" });
    const trigger = await push(source, body, "raw_processing_complete");
    await runDurableObjectAlarm(ledgerOf(source));
    await runQueue();
    expect(fake.rawRequests()).toEqual([]);
    expect((await pullOf(source, trigger)).rawRequests).toMatchObject([{ state: "invalid", error: expect.stringContaining("min_event_timestamp") }]);
  });

  it("are made only for sources with autoRequest", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource();
    await triggerRaw(source, 4008, "2099-12-26T00:00:00Z", "2099-12-26T01:00:00Z");
    expect(fake.rawRequests()).toEqual([]);
  });
});
