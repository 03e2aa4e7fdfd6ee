/**
 * CentrePoint as its published documentation shows it (test/support/centrepoint-api.ts): the
 * relay's schemas read the published answers and give UTC times with Z; the fake CentrePoint
 * answers in the same shapes and enforces the published rate limit.
 */
import { describe, expect, it } from "vitest";
import { DOWNLOAD_URL_TTL_MS } from "../../../../harness/fake-centrepoint";
import { getSubject } from "../../../../src/providers/centrepoint/api/endpoints";
import { dataFilesSchema, downloadUrlSchema, rawActivityRequestSchema, subjectSchema, uploadSchema } from "../../../../src/providers/centrepoint/api/schemas";
import { dataFileFacts, uploadFact } from "../../../../src/pull/facts";
import {
  PUBLISHED_DATA_FILES,
  PUBLISHED_DOWNLOAD_URL,
  PUBLISHED_GUID,
  PUBLISHED_RAW_REQUEST_PENDING,
  PUBLISHED_SUBJECT,
  PUBLISHED_TICKS_DATE,
  PUBLISHED_UPLOAD,
} from "../../../support/centrepoint-api";
import { CLIENT, createHarness, T0 } from "./setup";

type Json = Record<string, unknown>;

/** The fake's raw answer to a GET (with a token for `scope`). */
async function fakeGet(h: ReturnType<typeof createHarness>, path: string, scope: string, address?: string): Promise<Response> {
  const token = await h.fake.fetch(
    "http://x/connect/token",
    {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret, grant_type: "client_credentials", scope }).toString(),
    },
    address,
  );
  const { access_token } = (await token.json()) as { access_token: string };
  return h.fake.fetch(`http://x${path}`, { headers: { authorization: `Bearer ${access_token}` } }, address);
}

async function fakeJson(h: ReturnType<typeof createHarness>, path: string, scope: string): Promise<any> {
  const res = await fakeGet(h, path, scope);
  expect(res.status, path).toBe(200);
  return res.json();
}

const keys = (o: object) => Object.keys(o).sort();

describe("the relay reads CentrePoint's published answers", () => {
  it("a pending request without its start and completion times, data files with GUID ids, an IANA timezone, a RAW upload file", () => {
    expect(rawActivityRequestSchema.parse(PUBLISHED_RAW_REQUEST_PENDING)).toMatchObject({
      id: PUBLISHED_RAW_REQUEST_PENDING.id,
      status: "pending",
      startDateTimeUtc: null,
      completedDateTimeUtc: null,
    });
    expect(dataFilesSchema.parse(PUBLISHED_DATA_FILES).map((f) => f.id)).toEqual(PUBLISHED_DATA_FILES.map((f) => f.id));
    expect(downloadUrlSchema.parse(PUBLISHED_DOWNLOAD_URL).downloadUrl).toBe(PUBLISHED_DOWNLOAD_URL.downloadUrl);
    expect(subjectSchema.parse(PUBLISHED_SUBJECT)).toEqual({
      id: "17896",
      studyId: "236",
      siteId: "1153",
      siteIdentifier: "Site 1",
      subjectIdentifier: "TEST123",
      timezone: "Africa/Abidjan",
    });
    expect(uploadSchema.parse(PUBLISHED_UPLOAD).uploadFiles).toMatchObject([{ id: "8456", fileType: "RAW" }]);
  });

  it("gives every CentrePoint time as UTC with Z (seven fractional digits and +00:00 read to the millisecond)", () => {
    expect(rawActivityRequestSchema.parse(PUBLISHED_RAW_REQUEST_PENDING).createdDateTimeUtc).toBe("2019-07-11T18:36:38.217Z");
    expect(dataFilesSchema.parse(PUBLISHED_DATA_FILES)[0]!.expirationDateUtc).toBe("2019-08-10T18:10:19.989Z");
    expect(downloadUrlSchema.parse(PUBLISHED_DOWNLOAD_URL).expirationDateUtc).toBe("2019-07-11T19:33:38.371Z");
    // What events carry.
    expect(dataFileFacts(dataFilesSchema.parse(PUBLISHED_DATA_FILES))).toEqual([
      { id: "255037a7-c163-483d-182a-08d7062fed2c", fileName: PUBLISHED_DATA_FILES[0].fileName, sizeBytes: 199292255, expiresAt: "2019-08-10T18:10:19.989Z" },
      { id: "19688216-d13b-4403-182b-08d7062fed2c", fileName: PUBLISHED_DATA_FILES[1].fileName, sizeBytes: 296, expiresAt: "2019-08-10T18:10:19.989Z" },
    ]);
    expect(uploadFact(uploadSchema.parse(PUBLISHED_UPLOAD))).toMatchObject({
      dateUploadedUtc: "2020-10-26T18:39:57.000Z",
      files: [{ beginOfData: "2020-10-20T18:39:57.000Z", endOfData: "2020-10-26T18:39:57.000Z" }],
    });
    // With another offset, still the same instant in UTC; text that is no date is kept as sent.
    expect(dataFilesSchema.parse([{ ...PUBLISHED_DATA_FILES[0], expirationDateUtc: "2019-08-10T20:10:19.9895852+02:00" }])[0]!.expirationDateUtc).toBe(
      "2019-08-10T18:10:19.989Z",
    );
    expect(dataFilesSchema.parse([{ ...PUBLISHED_DATA_FILES[0], expirationDateUtc: "soon" }])[0]!.expirationDateUtc).toBe("soon");
  });
});

describe("the fake CentrePoint answers in the published shapes", () => {
  it("raw requests: a pending one leaves out its start and completion; dates with seven fractional digits and +00:00", async () => {
    const h = createHarness({ fake: { completionDelayMs: 60_000 } });
    const created = await h.fake.fetch("http://x/connect/token", {
      method: "POST",
      body: new URLSearchParams({ client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret, grant_type: "client_credentials" }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    const { access_token } = (await created.json()) as { access_token: string };
    const post = await h.fake.fetch("http://x/dataretrieval/v3/RawActivityRequests", {
      method: "POST",
      headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
      body: JSON.stringify({
        fileFormat: "avro",
        studyId: 189,
        subjectId: 17896,
        beginTimestampUtc: "2029-12-31T17:31:36Z",
        endTimestampUtc: "2029-12-31T18:31:36Z",
      }),
    });
    const pending = (await post.json()) as Json;
    for (const k of keys(PUBLISHED_RAW_REQUEST_PENDING)) expect(pending).toHaveProperty(k);
    expect(pending).not.toHaveProperty("startDateTimeUtc");
    expect(pending).not.toHaveProperty("completedDateTimeUtc");
    expect(pending.createdDateTimeUtc).toMatch(PUBLISHED_TICKS_DATE);
    h.clock.t += 60_000;
    h.fake.completeDue();
    const done = (await fakeJson(h, `/dataretrieval/v3/RawActivityRequests/${pending.id}`, "DataRetrieval")) as Json;
    expect([done.status, done.startDateTimeUtc, done.completedDateTimeUtc]).toEqual([
      "completed",
      expect.stringMatching(PUBLISHED_TICKS_DATE),
      expect.stringMatching(PUBLISHED_TICKS_DATE),
    ]);

    const files = (await fakeJson(h, `/dataretrieval/v3/RawActivityRequests/${pending.id}/datafiles`, "DataRetrieval")) as Json[];
    expect(files).toHaveLength(2);
    for (const f of files) {
      expect(keys(f)).toEqual(keys(PUBLISHED_DATA_FILES[0]));
      expect(f.id).toMatch(PUBLISHED_GUID);
      expect(f.expirationDateUtc).toMatch(PUBLISHED_TICKS_DATE);
    }
    // GUIDs are matched in any case, as ASP.NET's route does.
    const one = (await fakeJson(h, `/dataretrieval/v3/DataFiles/${String(files[0]!.id).toUpperCase()}`, "DataRetrieval")) as Json;
    expect(one).toEqual(files[0]);

    const url = (await fakeJson(h, `/dataretrieval/v3/DataFiles/${files[0]!.id}/downloadurl`, "DataRetrieval")) as Json;
    expect(keys(url)).toEqual(keys(PUBLISHED_DOWNLOAD_URL));
    expect(url.expirationDateUtc).toMatch(PUBLISHED_TICKS_DATE);
    const lifetime = Date.parse(String(url.expirationDateUtc)) - h.clock.t;
    expect(lifetime).toBe(DOWNLOAD_URL_TTL_MS);
    expect(lifetime).toBeGreaterThanOrEqual(110_000);
    expect(lifetime).toBeLessThanOrEqual(130_000);
    const sas = new URL(String(url.downloadUrl)).searchParams;
    expect(Date.parse(sas.get("se")!) - Date.parse(sas.get("st")!)).toBe(DOWNLOAD_URL_TTL_MS);
  });

  it("subjects and uploads: the published fields, an IANA timezone, a plain dob, fileType RAW", async () => {
    const h = createHarness();
    const subject = (await fakeJson(h, "/centrepoint/v3/Studies/189/Subjects/44732", "CentrePoint")) as Json;
    expect(keys(subject)).toEqual(keys(PUBLISHED_SUBJECT));
    expect(subject.timezone).toMatch(/^[A-Z][A-Za-z_]+\/[A-Za-z_]+$/);
    expect(subject.dob).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const upload = (await fakeJson(h, "/centrepoint/v3/Studies/189/Subjects/44732/Uploads/85045", "CentrePoint")) as Json & { uploadFiles: Json[] };
    expect(keys(upload)).toEqual(keys(PUBLISHED_UPLOAD));
    expect(upload.uploadFiles.map(keys)).toEqual([keys(PUBLISHED_UPLOAD.uploadFiles[0])]);
    expect(upload.uploadFiles[0]!.fileType).toBe("RAW");
    expect(typeof upload.id).toBe("number");
  });

  it("limits each client address to 500 requests in any minute, then answers 429 text/plain with Retry-After in seconds", async () => {
    const h = createHarness();
    const get = (address?: string) => h.fake.fetch("http://x/centrepoint/v3/WebhookEvents", undefined, address);
    for (let i = 0; i < 500; i++) {
      h.clock.t += 10; // every request counts, a 401 too
      expect((await get()).status).toBe(401);
    }
    h.clock.t += 10;
    const refused = await get();
    expect(refused.status).toBe(429);
    expect(refused.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(refused.headers.get("retry-after")).toBe("55"); // the first request leaves the window 55 s later
    expect(await refused.text()).toMatch(/rate limit/i);
    expect(h.fake.rateLimited()).toBe(1);
    // Another client address has its own minute.
    expect((await get("203.0.113.9")).status).toBe(401);
    // Once the oldest request has left the window, one more passes.
    h.clock.t = T0 + 10 + 60_000 + 1;
    expect((await get()).status).toBe(401);
    expect((await get()).status).toBe(429);
    expect(h.fake.rateLimited()).toBe(2);
  });

  it("the relay's client waits out the fake's 429 (text/plain, Retry-After in seconds), then gets through", async () => {
    const h = createHarness({ fake: { rateLimitPerMinute: 2 }, client: { limits: { maxWaitMs: 120_000 } } });
    expect((await getSubject(h.api, 189, 44732)).ok).toBe(true); // the token and the subject
    const r = await getSubject(h.api, 189, 44733);
    expect(r.ok && r.value.subjectIdentifier).toBe("SUBJ-44733");
    expect(h.sleeps).toEqual([60_000]);
    expect(h.fake.rateLimited()).toBe(1);
  });
});
