/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import { normalizeDelivery, parseTimestamp, type NormalizedEvent, type NormalizeInput } from "../../../src/providers/centrepoint/normalize";

/**
 * A golden file: `body` is the JSON payload (sent as its UTF-8 serialisation); `bodyText` replaces it
 * for bodies that are not JSON. Every golden runs with the input constants below.
 */
interface Golden {
  event: string | null;
  body?: unknown;
  bodyText?: string;
  /** Everything normalization returns but `reducedData` (checked by its own test below). */
  expected: Omit<NormalizedEvent, "reducedData">;
}

const SOURCE_ID = "study-189";
const DELIVERY_ID = "2f609110-0fea-33de-b70e-337c581e9001";
const RECEIVED_AT = Date.UTC(2024, 5, 10, 12, 34, 56, 789); // 2024-06-10T12:34:56.789Z

const goldens = import.meta.glob<Golden>("./golden/*.json", { eager: true, import: "default" });

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const json = (value: unknown): Uint8Array => encode(JSON.stringify(value));

/** A delivery input with test defaults; `body` defaults to the documented upload `started` payload. */
function makeInput(overrides: Partial<NormalizeInput> = {}): NormalizeInput {
  return {
    sourceId: SOURCE_ID,
    deliveryId: DELIVERY_ID,
    event: "upload",
    receivedAt: RECEIVED_AT,
    body: json({ status: "started", uploadId: "85045", subjectId: "44732", studyId: "189" }),
    ...overrides,
  };
}

const RAW_PROCESSING = {
  study_id: 1064,
  subject_id: 19525,
  subject_identifier: "TEST123",
  monitor_serial: "TAS1F39160337",
  created_at_utc: "2019-07-19T19:30:28Z",
  min_event_timestamp: "2019-07-19T14:08:58Z",
  max_event_timestamp: "2019-07-19T19:30:25Z",
  status: "Completed",
  error_message: null,
};

const DATA_RETRIEVAL = {
  client_id: "YrcN0eLR5IIiCgG85CgkzT0",
  tracking_id: "a7da760f-7906-4cb7-964a-ab87f45ea962",
  study_id: 1064,
  subject_id: 19512,
  subject_identifier: "TEST1234",
  created_at_utc: "2019-07-17T18:18:20Z",
  started_at_utc: "2019-07-17T18:18:23Z",
  completed_at_utc: "2019-07-17T18:18:23Z",
  request_status: "Completed",
  files: [],
};

describe("golden files", () => {
  const entries = Object.entries(goldens).map(([path, golden]) => [path.replace(/^.*\//, ""), golden] as const);

  it("are found", () => {
    expect(entries.length).toBeGreaterThanOrEqual(20);
  });

  it.each(entries)("%s", (_name, golden) => {
    const body = golden.bodyText !== undefined ? encode(golden.bodyText) : json(golden.body);
    const { reducedData, ...result } = normalizeDelivery(makeInput({ event: golden.event, body }));
    expect(result).toStrictEqual(golden.expected);
    // The reduced data is `data` without `original` and without passed-through fields.
    const { original: _original, bodyText: _bodyText, ...data } = golden.expected.envelope.data;
    for (const [key, value] of Object.entries(reducedData)) expect(data[key], key).toStrictEqual(value);
    expect(reducedData).not.toHaveProperty("original");
  });
});

describe("parseTimestamp", () => {
  it("reads 7 fractional digits without an offset as UTC", () => {
    expect(parseTimestamp("2016-06-14T20:46:00.0000000")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2016, 5, 14, 20, 46, 0), hasOffset: false },
    });
  });

  it("truncates digits below the millisecond", () => {
    expect(parseTimestamp("2016-06-14T20:46:00.9999999")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2016, 5, 14, 20, 46, 0, 999), hasOffset: false },
    });
  });

  it("pads a short fraction to milliseconds", () => {
    expect(parseTimestamp("2016-06-14T20:46:00.5Z")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2016, 5, 14, 20, 46, 0, 500), hasOffset: true },
    });
  });

  it("reads Z as UTC", () => {
    expect(parseTimestamp("2019-07-19T19:30:28Z")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2019, 6, 19, 19, 30, 28), hasOffset: true },
    });
  });

  it("reads +00:00 as UTC", () => {
    expect(parseTimestamp("2019-07-17T16:52:53+00:00")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2019, 6, 17, 16, 52, 53), hasOffset: true },
    });
  });

  it("subtracts a positive offset", () => {
    expect(parseTimestamp("2019-07-17T16:52:53+02:00")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2019, 6, 17, 14, 52, 53), hasOffset: true },
    });
  });

  it("adds a negative offset with minutes", () => {
    expect(parseTimestamp("2019-07-17T23:45:00-05:30")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2019, 6, 18, 5, 15, 0), hasOffset: true },
    });
  });

  it("accepts an offset without a colon", () => {
    expect(parseTimestamp("2019-07-17T16:52:53+0200")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2019, 6, 17, 14, 52, 53), hasOffset: true },
    });
  });

  it("accepts a time without seconds", () => {
    expect(parseTimestamp("2019-07-17T16:52Z")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2019, 6, 17, 16, 52, 0), hasOffset: true },
    });
  });

  it("crosses a year boundary when applying an offset", () => {
    expect(parseTimestamp("2020-01-01T01:00:00+02:00")).toEqual({
      ok: true,
      value: { epochMs: Date.UTC(2019, 11, 31, 23, 0, 0), hasOffset: true },
    });
  });

  it("keeps two-digit years in the first century", () => {
    const parsed = parseTimestamp("0099-03-01T00:00:00Z");
    expect(parsed.ok && new Date(parsed.value.epochMs).toISOString()).toBe("0099-03-01T00:00:00.000Z");
  });

  it.each(["2020-02-29T00:00:00Z", "2000-02-29T00:00:00Z"])("accepts leap day %s", (text) => {
    expect(parseTimestamp(text).ok).toBe(true);
  });

  it.each([
    ["2019-02-29T00:00:00Z", "day out of range"],
    ["1900-02-29T00:00:00Z", "day out of range"],
    ["2019-04-31T00:00:00Z", "day out of range"],
    ["2019-13-01T00:00:00Z", "month out of range"],
    ["2019-00-01T00:00:00Z", "month out of range"],
    ["2019-07-17T24:00:00Z", "time of day out of range"],
    ["2019-07-17T23:60:00Z", "time of day out of range"],
    ["2019-07-17T23:59:60Z", "time of day out of range"],
    ["2019-07-17T23:59:59+24:00", "offset out of range"],
    ["6/14/2016 8:46:00 PM", "not an ISO-8601 date-time"],
    ["2017-11-01", "not an ISO-8601 date-time"],
    ["2019-07-17T16:52:53Z trailing", "not an ISO-8601 date-time"],
    ["", "not an ISO-8601 date-time"],
  ])("rejects %s", (text, reason) => {
    expect(parseTimestamp(text)).toEqual({ ok: false, error: reason });
  });
});

describe("event name", () => {
  it("is matched case-insensitively and trimmed", () => {
    const result = normalizeDelivery(makeInput({ event: "  Raw_Processing_Complete ", body: json(RAW_PROCESSING) }));
    expect(result.kind).toBe("raw_processing.completed");
  });

  it("is carried lower-cased and trimmed in the centrepointevent extension", () => {
    const result = normalizeDelivery(makeInput({ event: " UPLOAD " }));
    expect(result.envelope.centrepointevent).toBe("upload");
  });

  it("counts as missing when blank", () => {
    const result = normalizeDelivery(makeInput({ event: "   " }));
    expect(result.attention).toBe("missing X-ActiGraph-Event header");
  });
});

describe("upload kind", () => {
  it.each([
    ["Started", "upload.started"],
    ["COMPLETED", "upload.completed"],
    [" error ", "upload.error"],
  ])("maps status %j to %s", (status, kind) => {
    const result = normalizeDelivery(makeInput({ body: json({ status, uploadId: "1", studyId: "2", subjectId: "3" }) }));
    expect(result.kind).toBe(kind);
  });

  it("is unknown, with a reason, for an unknown status", () => {
    const result = normalizeDelivery(makeInput({ body: json({ status: "processing", uploadId: "1" }) }));
    expect([result.kind, result.attention]).toEqual(["unknown", 'upload with unknown status "processing"']);
  });

  it("keeps the normalized fields when the status is unknown", () => {
    const result = normalizeDelivery(makeInput({ body: json({ status: "processing", uploadId: 7 }) }));
    expect(result.envelope.data.uploadId).toBe("7");
  });
});

describe("raw_processing kind", () => {
  it("is unknown, with a reason, when status is missing", () => {
    const { status: _status, ...body } = RAW_PROCESSING;
    const result = normalizeDelivery(makeInput({ event: "raw_processing_complete", body: json(body) }));
    expect([result.kind, result.attention]).toEqual(["unknown", "raw_processing_complete without status"]);
  });
});

describe("data_retrieval kind", () => {
  const normalize = (body: object) => normalizeDelivery(makeInput({ event: "data_retrieval_complete", body: json({ ...DATA_RETRIEVAL, ...body }) }));

  it("is error when request_status is failed", () => {
    expect(normalize({ request_status: "Failed" }).kind).toBe("data_retrieval.error");
  });

  it("is error when error_message is set even if request_status is completed", () => {
    expect(normalize({ error_message: "Request cancelled after 6 hours" }).kind).toBe("data_retrieval.error");
  });

  it("is completed when error_message is blank", () => {
    expect(normalize({ error_message: "  " }).kind).toBe("data_retrieval.completed");
  });

  it("is unknown, with a reason, for a status that is not final", () => {
    const result = normalize({ request_status: "processing" });
    expect([result.kind, result.attention]).toEqual(["unknown", 'data_retrieval_complete with unknown request_status "processing"']);
  });
});

describe("time", () => {
  it("falls back to receivedAt, with a reason, when the event's own time is unparseable", () => {
    const body = json({ ...RAW_PROCESSING, created_at_utc: "yesterday" });
    const result = normalizeDelivery(makeInput({ event: "raw_processing_complete", body }));
    expect([result.envelope.time, result.attention]).toEqual(["2024-06-10T12:34:56.789Z", 'created_at_utc is not a valid timestamp: "yesterday"']);
  });

  it("is omitted, with a reason, when receivedAt is not a valid time", () => {
    const result = normalizeDelivery(makeInput({ receivedAt: Number.NaN }));
    expect(["time" in result.envelope, result.attention]).toEqual([false, "receivedAt is not a valid time"]);
  });
});

describe("subject", () => {
  it("is null and omitted from the envelope when only the study is known", () => {
    const result = normalizeDelivery(makeInput({ body: json({ status: "started", uploadId: "1", studyId: "189" }) }));
    expect([result.subject, "subject" in result.envelope]).toEqual([null, false]);
  });

  it("percent-encodes ids so they stay one path segment", () => {
    const body = json({ status: "started", uploadId: "1", studyId: "a/b", subjectId: "c d" });
    expect(normalizeDelivery(makeInput({ body })).subject).toBe("studies/a%2Fb/subjects/c%20d");
  });
});

describe("envelope", () => {
  it("percent-encodes the source id", () => {
    expect(normalizeDelivery(makeInput({ sourceId: "a b" })).envelope.source).toBe("/centrepoint/sources/a%20b");
  });
});

describe("ids", () => {
  it("are null, with a reason, when neither string nor number", () => {
    const result = normalizeDelivery(makeInput({ body: json({ status: "started", uploadId: true }) }));
    expect([result.envelope.data.uploadId, result.attention]).toEqual([null, "uploadId is not a usable id: true"]);
  });

  it("are null, with a reason, when a number overflows to Infinity", () => {
    const result = normalizeDelivery(makeInput({ body: encode('{"status":"started","uploadId":1e400}') }));
    expect([result.envelope.data.uploadId, result.attention]).toEqual([null, "uploadId is not a usable id: Infinity"]);
  });
});

describe("daily statistics", () => {
  it("keeps the parsed body in data.original even when the body has an `original` key", () => {
    const body = { studyId: 1, subjectId: 2, dayStatId: 3, date: "2013-08-07T00:00:00", original: "x" };
    const result = normalizeDelivery(makeInput({ event: "cp2_daily_statistics_complete", body: json(body) }));
    expect(result.envelope.data.original).toEqual(body);
  });
});

describe("body", () => {
  it("is parsed after a UTF-8 byte order mark", () => {
    const body = encode('\uFEFF{"status":"started","uploadId":"1","studyId":"2","subjectId":"3"}');
    expect(normalizeDelivery(makeInput({ body })).kind).toBe("upload.started");
  });

  it("is decoded lossily, with a reason, when it is not valid UTF-8", () => {
    const prefix = encode('{"status":"started","message":"');
    const body = new Uint8Array([...prefix, 0xff, ...encode('"}')]);
    const result = normalizeDelivery(makeInput({ body }));
    expect([result.kind, result.attention]).toEqual(["upload.started", "body is not valid UTF-8"]);
  });

  it("is not valid JSON when empty", () => {
    const result = normalizeDelivery(makeInput({ body: new Uint8Array() }));
    expect(result.envelope.data).toEqual({ original: null, bodyText: "" });
  });

  it.each([
    ["null", "body is null, not a JSON object"],
    ['"ping"', "body is a string, not a JSON object"],
    ["42", "body is a number, not a JSON object"],
  ])("%s is reported as not an object", (text, attention) => {
    expect(normalizeDelivery(makeInput({ body: encode(text) })).attention).toBe(attention);
  });

  it.each([
    ["upload", { status: { nested: true }, uploadId: [1], firstEpochUTC: 5, firstEpochSubjectTZ: {} }],
    ["data_retrieval_complete", { files: "none", error_message: 0, completed_at_utc: false }],
    ["data_retrieval_complete", { files: [null, 1, "x", { file_size: "big" }] }],
    ["daily_statistics_complete", JSON.parse('{"__proto__":{"polluted":true},"studyId":1e400}')],
    ["cp2_daily_statistics_complete", { date: null, studyId: -0, subjectId: 1.5 }],
  ])("never throws for malformed %s fields", (event, body) => {
    expect(() => normalizeDelivery(makeInput({ event, body: json(body) }))).not.toThrow();
  });

  // Issue 16, item 7: V8's JSON.stringify recurses for objects with an index-like key ("0") or a
  // "toJSON" key, and overflows its stack a few thousand levels down (about 2,430 for {"0":...} in
  // workerd: a 12 KB body); arrays and other keys take an iterative path and do not throw.
  it.each([
    ["upload", "uploadId", '{"0":', "uploadId is not a usable id: "],
    ["upload", "status", '{"0":', "upload with unknown status "],
    ["upload", "firstEpochUTC", '{"toJSON":', "firstEpochUTC is not a valid timestamp: "],
    ["upload", "firstEpochSubjectTZ", '[{"0":', "firstEpochSubjectTZ is not a valid timestamp: "],
    ["raw_processing_complete", "subject_id", '{"0":', "subject_id is not a usable id: "],
    ["daily_statistics_complete", "date", '{"0":', "date is not a valid timestamp: "],
  ])("flags %s with %s nested 8,000 levels deep, with a short preview, and does not throw", (event, key, open, reason) => {
    const close = open.startsWith("[") ? "}]" : "}";
    const body = encode(`{"${key}":${open.repeat(8000)}1${close.repeat(8000)}}`);
    const result = normalizeDelivery(makeInput({ event, body }));
    expect(result.attention).toContain(reason + open + open.slice(0, 3));
    const preview = result.attention!.slice(result.attention!.indexOf(reason) + reason.length).split(";")[0]!;
    expect(preview.length).toBe(60);
    expect(preview.endsWith("...")).toBe(true);
  });

  it("previews values as JSON.stringify writes them", () => {
    const body = json({ status: "completed", uploadId: { a: [1, -0, true, null, 'x"y'], "0": { b: 1.5 } }, studyId: [1e21] });
    expect(normalizeDelivery(makeInput({ body })).attention).toBe(
      'studyId is not a usable id: [1e+21]; uploadId is not a usable id: {"0":{"b":1.5},"a":[1,0,true,null,"x\\"y"]}',
    );
  });
});
