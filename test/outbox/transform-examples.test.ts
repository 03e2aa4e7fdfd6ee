import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import doc from "../../docs/transforms.md?raw";
import { docExample } from "../../harness/targets/doc-examples";
import { EXAMPLE_REDCAP_FIELDS, redcapAnswer } from "../../harness/targets/redcap";
import golden from "../providers/centrepoint/golden/daily-statistics-complete.json";
import { freshId, ledgerOf, postWebhook, putSource, putTarget } from "../support/helpers";
import { batchBody } from "../../src/outbox/batch-body";
import { outboxOf } from "../support/outbox";

/** TEST_REDCAP_API_TOKEN of vitest.config.ts: the doc's REDCAP_API_TOKEN under a test-only name (every other string binding must be a reserved name). */
const TOKEN = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";

const dailyStats = JSON.stringify(golden.body);
const upload = JSON.stringify({
  status: "completed",
  firstEpochUTC: "2016-06-14T20:46:00.0000000",
  lastEpochUTC: "2016-06-14T20:47:00.0000000",
  uploadId: "85045",
  subjectId: "17887",
  studyId: "234",
});

interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

let seen: Seen[];
let answer: (req: Seen) => Response;

beforeEach(() => {
  seen = [];
  vi.spyOn(console, "log").mockImplementation(() => undefined);
  vi.spyOn(console, "warn").mockImplementation(() => undefined);
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req: Seen = {
      url: String(input),
      method: init?.method ?? "GET",
      headers: { ...(init?.headers as Record<string, string>) },
      body: new TextDecoder().decode(init?.body as Uint8Array),
    };
    seen.push(req);
    return answer(req);
  });
});
afterEach(() => vi.restoreAllMocks());

/** A source and a target built from a docs/transforms.md example; the two events go through ledger and outbox. */
async function run(example: string, events: { event: string; body: string }[], overrides: Record<string, unknown> = {}) {
  const source = freshId();
  const target = freshId("t");
  await putSource(source);
  const written = JSON.stringify(docExample(doc, example)).replaceAll("REDCAP_API_TOKEN", "TEST_REDCAP_API_TOKEN");
  await putTarget(target, { ...(JSON.parse(written) as Record<string, unknown>), sources: [source], ...overrides });
  for (const e of events) expect((await postWebhook(source, { event: e.event, body: e.body })).status).toBe(200);
  await runDurableObjectAlarm(ledgerOf(source));
  await runDurableObjectAlarm(outboxOf(target));
  await vi.waitFor(async () => expect((await outboxOf(target).health()).counts.pending + (await outboxOf(target).health()).counts.delivering).toBe(0), {
    timeout: 5_000,
    interval: 20,
  });
  return { source, target, outbox: outboxOf(target) };
}

describe("docs/transforms.md: REDCap record import", () => {
  it("imports an upload and a day of statistics as flat records with the token from the secret", async () => {
    const store = new Map<string, Record<string, string>>();
    answer = (req) => {
      const r = redcapAnswer({ token: TOKEN, fields: EXAMPLE_REDCAP_FIELDS }, req.headers["content-type"] ?? "", req.body, store);
      return new Response(r.body, { status: r.status, headers: { "content-type": "application/json" } });
    };
    const { outbox } = await run("redcap", [
      { event: "upload", body: upload },
      { event: "daily_statistics_complete", body: dailyStats },
    ]);
    expect((await outbox.health()).counts.delivered).toBe(2);
    expect(seen.map((s) => [s.method, s.url])).toEqual([
      ["POST", "https://redcap.example.org/api/"],
      ["POST", "https://redcap.example.org/api/"],
    ]);
    const forms = seen.map((s) => new URLSearchParams(s.body));
    expect(forms.map((f) => [f.get("content"), f.get("format"), f.get("type"), f.get("returnContent")])).toEqual([
      ["record", "json", "flat", "count"],
      ["record", "json", "flat", "count"],
    ]);
    expect(store.get("17887")).toEqual({
      record_id: "17887",
      cp_upload_id: "85045",
      cp_upload_first_epoch: "2016-06-14T20:46:00.000Z",
      cp_upload_last_epoch: "2016-06-14T20:47:00.000Z",
    });
    expect(store.get("0123TEST")).toEqual({ record_id: "0123TEST", cp_day: "2017-11-01", cp_wear_minutes: "75", cp_steps: "865" });
  });

  it("keeps REDCap's 400 error for a field the project lacks, and never the token", async () => {
    answer = (req) => {
      const r = redcapAnswer(
        { token: TOKEN, fields: EXAMPLE_REDCAP_FIELDS.filter((f) => f !== "cp_steps") },
        req.headers["content-type"] ?? "",
        req.body,
        new Map(),
      );
      return new Response(r.body, { status: r.status, headers: { "content-type": "application/json" } });
    };
    // One attempt: the answer is kept and the dispatch is dead, instead of waiting for the retry.
    const { outbox, source } = await run("redcap", [{ event: "daily_statistics_complete", body: dailyStats }], { retry: { maxAttempts: 1 } });
    const [dispatch] = (await outbox.list({ limit: 1 })).items;
    const detail = await outbox.getDispatch(source, dispatch!.deliveryId);
    expect(detail?.attempts[0]).toMatchObject({
      status: 400,
      responseBody: JSON.stringify({ error: "The following fields were not found in the project as real data fields: cp_steps" }),
    });
    expect(JSON.stringify(detail)).not.toContain(TOKEN);
  });
});

describe("docs/transforms.md: FHIR R4 Observation", () => {
  it("posts the day's statistics as an Observation with the subject identifier, the period and UCUM quantities", async () => {
    answer = () =>
      new Response(JSON.stringify({ resourceType: "Observation", id: "1" }), { status: 201, headers: { "content-type": "application/fhir+json" } });
    const { outbox } = await run("fhir", [{ event: "daily_statistics_complete", body: dailyStats }]);
    expect((await outbox.health()).counts.delivered).toBe(1);
    const [req] = seen;
    expect(req).toMatchObject({ method: "POST", url: "https://fhir.example.org/fhir/Observation" });
    expect(req!.headers).toMatchObject({ "content-type": "application/json", accept: "application/fhir+json" });
    const obs = JSON.parse(req!.body) as Record<string, unknown>;
    expect(obs).toMatchObject({
      resourceType: "Observation",
      status: "final",
      subject: { identifier: { value: "0123TEST" } },
      effectivePeriod: { start: "2017-11-01T11:45:00.000Z", end: "2017-11-01T13:04:00.000Z" },
      valueQuantity: { value: 865, system: "http://unitsofmeasure.org", code: "{steps}" },
      component: [{ valueQuantity: { value: 75, code: "min" } }],
    });
  });
});

describe("docs/transforms.md: a warehouse taking batches of 100", () => {
  it("sends 150 events as batches of 100 and 50, each body the batch of the recorded envelopes", async () => {
    answer = () => new Response("ok");
    const source = freshId();
    const target = freshId("t");
    await putSource(source);
    const example = JSON.parse(/<!-- example: warehouse -->\s*```json\n([\s\S]*?)\n```/.exec(doc)![1]!) as Record<string, unknown>;
    await putTarget(target, { ...example, sources: [source], signing: { secretEnv: "TEST_SIGNING_SECRET" } });
    for (let i = 0; i < 150; i++) expect((await postWebhook(source, { deliveryId: `wh-${i}`, body: upload })).status).toBe(200);
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(target));
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(1), { timeout: 5_000, interval: 20 });
    await vi.waitFor(
      async () => {
        await runDurableObjectAlarm(outboxOf(target));
        expect((await outboxOf(target).health()).counts.delivered).toBe(150);
      },
      { timeout: 20_000, interval: 500 },
    );
    expect(seen.map((s) => s.headers["content-type"])).toEqual(["application/cloudevents-batch+json", "application/cloudevents-batch+json"]);
    // Each body is batchBody() of the envelopes as recorded (test-node/cloudevents-batch.test.ts parses batchBody's output with the SDK).
    const outbox = outboxOf(target);
    const batches = seen.map((s) => JSON.parse(s.body) as { id: string }[]);
    expect(batches.map((b) => b.length)).toEqual([100, 50]);
    for (const [i, b] of batches.entries()) {
      const envelopes = await Promise.all(b.map(async (e) => (await outbox.payload(source, e.id))!.envelope));
      expect(seen[i]!.body).toBe(batchBody(envelopes));
    }
    expect(new Set(batches.flat().map((e) => e.id)).size).toBe(150);
  }, 30_000);
});
