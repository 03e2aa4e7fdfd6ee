/** The fake CentrePoint itself, and the endpoint functions against it. */
import { describe, expect, it } from "vitest";
import { FAKE_ACTIVE_LIMIT_MESSAGE } from "../../../../harness/fake-centrepoint";
import {
  createRawActivityRequest,
  getDownloadUrl,
  getRawActivityRequest,
  getSubject,
  getUpload,
  getWebhookRegistration,
  isActiveLimitError,
  listDataFiles,
} from "../../../../src/providers/centrepoint/api/endpoints";
import { deliveryIdOf, eventOf, historyItemSchema, parseHistoryHeaderValues } from "../../../../src/providers/centrepoint/api/schemas";
import { CLIENT, createHarness, T0 } from "./setup";

const RAW_BODY = {
  fileFormat: "avro",
  studyId: 189,
  subjectId: 19525,
  beginTimestampUtc: "2029-12-31T14:08:58Z",
  endTimestampUtc: "2029-12-31T19:30:25Z",
} as const;

/** Fetches a token from the fake for `scope`. */
async function tokenFor(h: ReturnType<typeof createHarness>, scope: string): Promise<string> {
  const res = await h.fake.fetch("http://127.0.0.1/connect/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret, grant_type: "client_credentials", scope }).toString(),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

describe("fake: routing and auth", () => {
  it("matches paths case-insensitively and ignores the origin", async () => {
    const h = createHarness();
    const token = await tokenFor(h, "CentrePoint");
    const res = await h.fake.fetch("https://anything.example/CENTREPOINT/v3/studies/189/WEBHOOKS/74", { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: 74, studyId: 189, isDisabled: false });
  });

  it("answers 401 without a token, 403 for the wrong scope and 404 text/plain for unknown paths", async () => {
    const h = createHarness();
    const token = await tokenFor(h, "DataRetrieval");
    expect((await h.fake.fetch("http://x/centrepoint/v3/Studies/189/Webhooks/74")).status).toBe(401);
    const wrongScope = await h.fake.fetch("http://x/centrepoint/v3/Studies/189/Webhooks/74", { headers: { authorization: `Bearer ${token}` } });
    expect(wrongScope.status).toBe(403);
    const unknown = await h.fake.fetch("http://x/dataretrieval/v3/Nowhere", { headers: { authorization: `Bearer ${token}` } });
    expect([unknown.status, unknown.headers.get("content-type"), await unknown.text()]).toEqual([404, "text/plain; charset=utf-8", "Not Found"]);
  });

  it("expires tokens by its own clock", async () => {
    const h = createHarness({ fake: { tokenExpiresInS: 60 } });
    const token = await tokenFor(h, "CentrePoint");
    const get = () => h.fake.fetch("http://x/centrepoint/v3/Studies/189/Webhooks/74", { headers: { authorization: `Bearer ${token}` } });
    expect((await get()).status).toBe(200);
    h.clock.t += 60_000;
    expect((await get()).status).toBe(401);
  });

  it("refuses a scope the client may not have", async () => {
    const h = createHarness({ fake: { clients: [{ ...CLIENT, scopes: ["CentrePoint"] }] } });
    const res = await h.fake.fetch("http://x/connect/token", {
      method: "POST",
      body: new URLSearchParams({ client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret, grant_type: "client_credentials", scope: "DataRetrieval" }),
    });
    expect([res.status, await res.json()]).toEqual([400, { error: "invalid_scope" }]);
  });

  it("logs requests without tokens", async () => {
    const h = createHarness();
    await getWebhookRegistration(h.api, 189, 74);
    const log = JSON.stringify(h.fake.requests());
    for (const token of h.tokensSent) expect(log).not.toContain(token);
    expect(h.fake.requests()[1]).toMatchObject({ method: "GET", bearer: true, scope: "CentrePoint", status: 200, at: T0 });
  });
});

describe("fake: registrations and history", () => {
  it("serves a configured registration and 404 for an unknown study", async () => {
    const h = createHarness({ fake: { webhooks: [{ studyId: "7", webhookId: "15", url: "https://relay.test/in/7", isDisabled: true, events: ["upload"] }] } });
    const r = await getWebhookRegistration(h.api, 7, 15);
    expect(r.ok && r.value).toMatchObject({ url: "https://relay.test/in/7", isDisabled: true, webhookEvents: [{ id: "3", name: "upload" }] });
    const missing = await getWebhookRegistration(h.api, 8, 15);
    expect(!missing.ok && missing.error).toMatchObject({ kind: "http", status: 404 });
  });

  it("records one item per send attempt in CentrePoint's shape", () => {
    const h = createHarness();
    h.fake.recordDelivery({ deliveryId: "d-1", event: "upload", body: "{}", errorMessage: "Failed to resolve domain", createdAt: T0 });
    h.fake.recordDelivery({ deliveryId: "d-1", event: "upload", body: "{}", createdAt: T0, lastSentAt: T0 + 86_400_000 });
    const [failed, sent] = h.fake.history();
    expect(typeof failed!.request.headers).toBe("string");
    expect(Object.keys(JSON.parse(failed!.request.headers))).toEqual(
      expect.arrayContaining(["X-ActiGraph-Delivery", "X-ActiGraph-Event", "X-ActiGraph-Webhook-id"]),
    );
    expect(failed).toMatchObject({ createdDate: "2030-01-01T00:00:00", errorMessage: "Failed to resolve domain" });
    expect(failed!.response).toBeUndefined();
    expect(sent).toMatchObject({ lastSentDate: "2030-01-02T00:00:00", response: { responseCode: 200 } });
    const parsed = h.fake.history().map((i) => historyItemSchema.parse(i));
    expect(parsed.map((i) => [deliveryIdOf(i), eventOf(i)])).toEqual([
      [{ ok: true, value: "d-1" }, "upload"],
      [{ ok: true, value: "d-1" }, "upload"],
    ]);
  });

  it("lets a test override request headers in any casing", () => {
    const h = createHarness();
    const item = h.fake.recordDelivery({ event: "upload", body: "{}", headers: { "x-actigraph-event": "Upload", "X-ActiGraph-Signature": "c2ln" } });
    const headers = parseHistoryHeaderValues(item.request.headers);
    expect(headers.ok && [headers.value["x-actigraph-event"], headers.value["x-actigraph-signature"]]).toEqual([["Upload"], ["c2ln"]]);
  });

  it("rejects a limit outside 1..100", async () => {
    const h = createHarness();
    const token = await tokenFor(h, "CentrePoint");
    const res = await h.fake.fetch("http://x/centrepoint/v3/Studies/189/Webhooks/74/history?limit=101", { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(400);
  });
});

describe("fake: subjects and uploads", () => {
  it("serves dob, gender, weight and height, which the relay's schema drops; counts lookups", async () => {
    const h = createHarness();
    h.fake.setSubject("189", "44732", { subjectIdentifier: "TEST123", dob: "1990-02-03" });
    const token = await tokenFor(h, "CentrePoint");
    const raw = (await (
      await h.fake.fetch("http://x/centrepoint/v3/Studies/189/Subjects/44732", { headers: { authorization: `Bearer ${token}` } })
    ).json()) as Record<string, unknown>;
    expect(raw).toMatchObject({ dob: "1990-02-03", gender: expect.any(String), weight: 150, height: 65 });
    const r = await getSubject(h.api, 189, 44732);
    expect(r.ok && r.value).toEqual({
      id: "44732",
      studyId: "189",
      siteId: "12",
      siteIdentifier: "Site A",
      subjectIdentifier: "TEST123",
      timezone: "America/New_York",
    });
    expect(JSON.stringify(r)).not.toMatch(/dob|gender|weight|height|1990/);
    expect(h.fake.subjectLookups("189", "44732")).toBe(2);
  });

  it("answers 404 for unknown subjects when generation is off", async () => {
    const h = createHarness({ fake: { generateMissing: false } });
    const r = await getSubject(h.api, 189, 1);
    expect(!r.ok && r.error).toMatchObject({ kind: "http", status: 404 });
  });

  it("serves upload details with their files", async () => {
    const h = createHarness();
    h.fake.setUpload("189", "44732", "85045", { activityMonitorSerial: "TAS1Z12345678" });
    const r = await getUpload(h.api, 189, 44732, 85045);
    expect(r.ok && r.value).toMatchObject({ id: "85045", subjectId: "44732", activityMonitorSerial: "TAS1Z12345678", uploadFiles: [{ fileType: "RAW" }] });
  });
});

describe("fake: raw activity requests and data files", () => {
  it("creates a pending request, completes it on its clock and sends the data_retrieval_complete body", async () => {
    const h = createHarness({ fake: { completionDelayMs: 60_000 } });
    const created = await createRawActivityRequest(h.api, RAW_BODY);
    if (!created.ok) throw new Error(created.error.kind);
    expect(created.value.status).toBe("pending");
    expect(h.fake.completeDue()).toEqual([]);
    h.clock.t += 30_000;
    expect((await getRawActivityRequest(h.api, created.value.id)).ok && h.fake.rawRequests()[0]!.status).toBe("processing");
    h.clock.t += 30_000;
    const [hook, ...rest] = h.fake.completeDue();
    expect(rest).toEqual([]);
    const body = JSON.parse(hook!.body) as Record<string, unknown> & { files: Array<Record<string, unknown>> };
    expect(body).toMatchObject({ client_id: CLIENT.clientId, tracking_id: created.value.id, study_id: 189, subject_id: 19525, request_status: "Completed" });
    expect(body.files.map((f) => f.file_type)).toEqual(["avro", "summary"]);
    expect(body.files[0]!.file_name).toMatch(/^19525_TAS1F39160337_\d+_\d+_[0-9a-f]{4}\.avro$/);
    const status = await getRawActivityRequest(h.api, created.value.id);
    expect(status.ok && status.value.status).toBe("completed");
  });

  it("lists data files and hands out a fresh download URL on every call", async () => {
    const h = createHarness({ fake: { completionDelayMs: 0 } });
    const created = await createRawActivityRequest(h.api, RAW_BODY);
    if (!created.ok) throw new Error(created.error.kind);
    h.fake.completeDue();
    const files = await listDataFiles(h.api, created.value.id);
    if (!files.ok) throw new Error(files.error.kind);
    expect(files.value).toHaveLength(2);
    const a = await getDownloadUrl(h.api, files.value[0]!.id);
    const b = await getDownloadUrl(h.api, files.value[0]!.id);
    expect(a.ok && b.ok && a.value.downloadUrl !== b.value.downloadUrl).toBe(true);
    expect(a.ok && a.value.downloadUrl).toMatch(/^https:\/\/blob\.fake\.invalid\/.+\?.*sig=[0-9a-f]{32}/);
    expect(files.value.map((f) => f.id)).toEqual([expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/), expect.any(String)]);
    const missing = await getDownloadUrl(h.api, "00000000-0000-0000-0000-000000000000");
    expect(!missing.ok && missing.error).toMatchObject({ kind: "http", status: 404 });
  });

  it("refuses an 11th active request with CentrePoint's text", async () => {
    const h = createHarness();
    for (let i = 0; i < 10; i++) expect((await createRawActivityRequest(h.api, RAW_BODY)).ok).toBe(true);
    const refused = await createRawActivityRequest(h.api, RAW_BODY);
    expect(!refused.ok && refused.error).toEqual({
      kind: "http",
      status: 400,
      reason: FAKE_ACTIVE_LIMIT_MESSAGE,
      endpoint: "/dataretrieval/v3/RawActivityRequests",
    });
    expect(!refused.ok && isActiveLimitError(refused.error)).toBe(true);
    h.fake.cancelRequest(h.fake.rawRequests()[0]!.id);
    expect((await createRawActivityRequest(h.api, RAW_BODY)).ok).toBe(true);
  });

  it("refuses a gt3x range over 15 days (the client checks first; the fake too)", async () => {
    const h = createHarness();
    const long = { ...RAW_BODY, fileFormat: "gt3x", endTimestampUtc: "2030-01-20T00:00:00Z" } as const;
    const local = await createRawActivityRequest(h.api, long);
    expect(!local.ok && local.error.kind).toBe("invalid_request");
    expect(h.fake.requests()).toEqual([]);
    const sent = await h.api.post("/dataretrieval/v3/RawActivityRequests", long, historyItemSchema, { scope: "DataRetrieval" });
    expect(!sent.ok && sent.error).toMatchObject({ kind: "http", status: 400, reason: "GT3X requests may not span more than 15 days." });
  });

  it("cancels a request the way CentrePoint does after 6 hours", async () => {
    const h = createHarness();
    const created = await createRawActivityRequest(h.api, RAW_BODY);
    if (!created.ok) throw new Error(created.error.kind);
    const hook = h.fake.cancelRequest(created.value.id);
    expect(JSON.parse(hook!.body)).toMatchObject({ request_status: "Error", error_message: "Request cancelled after 6 hours of execution", files: [] });
    expect(h.fake.cancelRequest(created.value.id)).toBeNull();
    const status = await getRawActivityRequest(h.api, created.value.id);
    expect(status.ok && status.value.status).toBe("error");
  });
});
