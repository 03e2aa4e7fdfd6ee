import { describe, expect, it } from "vitest";
import {
  dataFilesSchema,
  deliveryIdOf,
  downloadUrlSchema,
  eventOf,
  historyItemSchema,
  isActiveRequestStatus,
  pageSchema,
  parseHistoryHeaders,
  parseHistoryHeaderValues,
  rawActivityRequestBodySchema,
  rawActivityRequestSchema,
  subjectSchema,
  tokenResponseSchema,
  uploadSchema,
  wasDelivered,
  webhookRegistrationSchema,
} from "../../../../src/providers/centrepoint/api/schemas";

/** The two items of the V3 webhook history example (webhooks.md), as the API sends them. */
const HISTORY_EXAMPLE = {
  items: [
    {
      id: 34,
      webhookId: 236,
      webhookEventId: 4,
      webhookEvent: "raw_processing_complete",
      createdDate: "2019-06-03T20:41:01",
      lastSentDate: "2019-06-03T20:41:01",
      request: {
        headers:
          '{"Content-Type":["application/json"],"User-Agent":["ActiGraph-Hookshot/1.0"],"X-ActiGraph-Webhook-id":["14"],"X-ActiGraph-Event":["upload"],"X-ActiGraph-Delivery":["0f9G3fde-8Baf-0c83-1591-517307kpp19c"],"X-Client-Cert-Used":["false"],"Host":["hostaddress.host.com"],"Content-Length":["272"],"Expect":["100-continue"]}',
        body: '{"status":"completed","firstEpochUTC":"2018-03-08T00:20:00.0000000","uploadId":"362288","studyId":"8","subjectId":"2358"}',
      },
      response: {
        responseCode: 200,
        headers: '{"Connection":["keep-alive"],"Content-Length":["0"],"Date":["Thu, 08 Mar 2018 00:37:55 GMT"],"Server":["Apache-Coyote/1.1"]}',
        body: "",
      },
    },
    {
      id: 35,
      webhookId: 236,
      webhookEventId: 4,
      webhookEvent: "raw_processing_complete",
      createdDate: "2019-06-03T20:41:01",
      lastSentDate: "2019-06-04T21:27:00",
      errorMessage: "An error occurred while attempting to send a webhook message: Failed to resolve domain",
      request: {
        headers: '{"X-ActiGraph-Event":["upload"],"X-ActiGraph-Delivery":["0f9G3fde-8Baf-0c83-1591-517307kpp19c"]}',
        body: "{}",
      },
    },
  ],
  links: {},
  totalCount: 2,
  limit: 100,
  offset: 0,
};

describe("history items", () => {
  const page = pageSchema(historyItemSchema).parse(HISTORY_EXAMPLE);

  it("parse the documented example, ids as strings and dates without offset read as UTC", () => {
    const [first, second] = page.items;
    expect(first).toMatchObject({ id: "34", webhookId: "236", webhookEventId: "4", createdAtMs: Date.UTC(2019, 5, 3, 20, 41, 1) });
    expect(second!.lastSentAtMs).toBe(Date.UTC(2019, 5, 4, 21, 27, 0));
  });

  it("a failed send has no response and says so", () => {
    expect(page.items[1]!.response).toBeNull();
    expect(wasDelivered(page.items[0]!)).toBe(true);
    expect(wasDelivered(page.items[1]!)).toBe(false);
  });

  it("a null response is the same as an absent one", () => {
    const item = historyItemSchema.parse({ ...HISTORY_EXAMPLE.items[1], response: null });
    expect(item.response).toBeNull();
  });

  it("deliveryIdOf reads X-ActiGraph-Delivery; both attempts of one delivery share it", () => {
    expect(page.items.map((i) => deliveryIdOf(i))).toEqual([
      { ok: true, value: "0f9G3fde-8Baf-0c83-1591-517307kpp19c" },
      { ok: true, value: "0f9G3fde-8Baf-0c83-1591-517307kpp19c" },
    ]);
  });

  it("eventOf prefers the header the receiver saw over webhookEvent", () => {
    expect(eventOf(page.items[0]!)).toBe("upload");
    expect(eventOf({ webhookEvent: " Data_Retrieval_Complete ", request: { headers: "{}", body: "" } })).toBe("data_retrieval_complete");
    expect(eventOf({ webhookEvent: null, request: { headers: "not json", body: "" } })).toBeNull();
  });

  it("deliveryIdOf errs without the header or with unreadable headers", () => {
    expect(deliveryIdOf({ request: { headers: '{"X-ActiGraph-Event":["upload"]}', body: "" } })).toEqual({
      ok: false,
      error: "no X-ActiGraph-Delivery header",
    });
    expect(deliveryIdOf({ request: { headers: "{oops", body: "" } }).ok).toBe(false);
  });

  it("rejects a createdDate that is not a date", () => {
    const r = historyItemSchema.safeParse({ ...HISTORY_EXAMPLE.items[0], createdDate: "yesterday" });
    expect(r.success).toBe(false);
  });
});

describe("parseHistoryHeaders", () => {
  it("lower-cases names and keeps the first value", () => {
    expect(parseHistoryHeaders('{"X-Actigraph-Event":["upload","x"],"content-type":["application/json"]}')).toEqual({
      ok: true,
      value: { "x-actigraph-event": "upload", "content-type": "application/json" },
    });
  });

  it("merges names that differ only by case, keeping every value", () => {
    expect(parseHistoryHeaderValues('{"X-A":["1"],"x-a":["2"],"Y":"bare","Z":7,"N":null}')).toEqual({
      ok: true,
      value: { "x-a": ["1", "2"], y: ["bare"], z: ["7"] },
    });
  });

  it("errs on bad JSON and on non-objects, and reads empty as no headers", () => {
    expect(parseHistoryHeaders("{")).toEqual({ ok: false, error: "headers are not valid JSON" });
    expect(parseHistoryHeaders("[1]")).toEqual({ ok: false, error: "headers are not a JSON object" });
    expect(parseHistoryHeaders("")).toEqual({ ok: true, value: {} });
  });

  it("keeps a __proto__ header as plain data", () => {
    const r = parseHistoryHeaders('{"__proto__":["x"]}');
    expect(r.ok && Object.getPrototypeOf(r.value)).toBe(Object.prototype);
  });
});

describe("subject", () => {
  it("drops dob, gender, weight and height (data minimisation)", () => {
    const subject = subjectSchema.parse({
      id: 44732,
      studyId: 189,
      siteId: 12,
      siteIdentifier: "Site A",
      subjectIdentifier: "TEST123",
      dob: "1980-01-01T00:00:00",
      gender: "Female",
      timezone: "Eastern Standard Time",
      wearPosition: "Left Wrist",
      weight: 150,
      weightUnit: "Pounds",
      height: 65,
      heightUnit: "Inches",
    });
    expect(subject).toEqual({
      id: "44732",
      studyId: "189",
      siteId: "12",
      siteIdentifier: "Site A",
      subjectIdentifier: "TEST123",
      timezone: "Eastern Standard Time",
    });
    for (const field of ["dob", "gender", "weight", "weightUnit", "height", "heightUnit"]) expect(JSON.stringify(subject)).not.toContain(field);
  });
});

describe("other shapes", () => {
  it("token: expires_in as a number or numeric string", () => {
    expect(tokenResponseSchema.parse({ access_token: "a", expires_in: "3600", token_type: "Bearer" }).expires_in).toBe(3600);
    expect(tokenResponseSchema.safeParse({ access_token: "a", expires_in: 0 }).success).toBe(false);
  });

  it("registration: tolerant of missing descriptions and null events", () => {
    const r = webhookRegistrationSchema.parse({
      id: 74,
      studyId: "189",
      url: "https://x.test/h",
      isDisabled: false,
      webhookEvents: [{ id: 3, name: "upload" }],
    });
    expect(r.webhookEvents).toEqual([{ id: "3", name: "upload", description: null }]);
    expect(webhookRegistrationSchema.parse({ id: 1, studyId: 1, url: "u", isDisabled: true, webhookEvents: null }).webhookEvents).toEqual([]);
  });

  it("upload: ids as strings, uploadFiles kept", () => {
    const u = uploadSchema.parse({
      id: 85045,
      studyId: 189,
      subjectId: "44732",
      activityMonitorSerial: "TAS1F39160337",
      dateUploadedUtc: "2016-06-14T20:50:00Z",
      uploadFiles: [{ id: 1, fileType: "gt3x", totalRecords: 10, recordsInserted: 10, beginOfData: "a", endOfData: "b" }],
    });
    expect(u).toMatchObject({ id: "85045", subjectId: "44732", activityMonitorFirmware: null, uploadFiles: [{ id: "1", fileType: "gt3x" }] });
  });

  it("raw request: status compared case-insensitively", () => {
    const r = rawActivityRequestSchema.parse({ id: "a7da760f-7906-4cb7-964a-ab87f45ea962", status: " Completed " });
    expect(r.status).toBe("completed");
    expect(isActiveRequestStatus("PENDING")).toBe(true);
    expect(isActiveRequestStatus("processing")).toBe(true);
    expect(isActiveRequestStatus("error")).toBe(false);
  });

  it("raw request body: ids go out as numbers; gt3x ranges over 15 days and offset-less dates are refused", () => {
    const body = {
      fileFormat: "avro",
      studyId: "1064",
      subjectId: 19525,
      beginTimestampUtc: "2019-07-19T14:08:58Z",
      endTimestampUtc: "2019-07-19T19:30:25Z",
    } as const;
    expect(rawActivityRequestBodySchema.parse(body)).toMatchObject({ studyId: 1064, subjectId: 19525 });
    const long = { ...body, fileFormat: "gt3x" as const, endTimestampUtc: "2019-08-10T00:00:00Z" };
    expect(rawActivityRequestBodySchema.safeParse(long).success).toBe(false);
    expect(rawActivityRequestBodySchema.safeParse({ ...long, fileFormat: "avro" }).success).toBe(true);
    expect(rawActivityRequestBodySchema.safeParse({ ...body, beginTimestampUtc: "2019-07-19T14:08:58" }).success).toBe(false);
  });

  it("data files: a bare array or an envelope", () => {
    const file = { id: 9, fileName: "f.avro", expirationDateUtc: "2019-08-16T18:18:23Z", fileSizeBytes: 4570 };
    const parsed = { ...file, id: "9", expirationDateUtc: "2019-08-16T18:18:23.000Z" };
    expect(dataFilesSchema.parse([file])).toEqual([parsed]);
    expect(dataFilesSchema.parse({ items: [file], totalCount: 1 })).toEqual([parsed]);
  });

  it("download url: must be an http(s) URL", () => {
    expect(downloadUrlSchema.safeParse({ downloadUrl: "javascript:alert(1)", expirationDateUtc: null }).success).toBe(false);
    expect(downloadUrlSchema.safeParse({ downloadUrl: "https://blob.fake.invalid/x?sig=1", expirationDateUtc: "2030-01-01T00:15:00Z" }).success).toBe(true);
  });
});
