import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { CENTREPOINT_EVENTS } from "../src/providers/centrepoint/constants.ts";
import {
  createIdCounters,
  createSubjects,
  createWear,
  cp2DailyStatisticsComplete,
  dailyStatisticsComplete,
  dataRetrievalComplete,
  rawProcessingComplete,
  type SimSubject,
  splitInteger,
  subjectEvents,
  uploadBody,
  uploadCompleted,
  uploadError,
  uploadStarted,
  validationBody,
  type Wear,
} from "../harness/centrepoint/payloads.ts";
import { createRng } from "../harness/prng.ts";

// Field names and formats below are copied from the protocol reference (section 4), not from
// the factories, so a factory drifting from the documented shape fails here.
const TICKS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.0000000$/;
const ZULU = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const OFFSET = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/;
const LOCAL = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DIGITS = /^\d+$/;

function fixture(seed = 1): { subject: SimSubject; wear: Wear; rng: ReturnType<typeof createRng> } {
  const rng = createRng(seed);
  const subject = createSubjects(rng, 1)[0]!;
  return { subject, wear: createWear(subject, rng, 85045, 0), rng };
}

const keys = (o: object) => Object.keys(o).sort();

describe("upload", () => {
  test("started carries status and the three ids as decimal strings", () => {
    const { subject, wear } = fixture();
    const body = uploadStarted(subject, wear);
    assert.deepEqual(keys(body), ["status", "studyId", "subjectId", "uploadId"]);
    assert.equal(body.status, "started");
    for (const k of ["uploadId", "subjectId", "studyId"]) assert.match(body[k] as string, DIGITS);
    assert.equal(body.uploadId, "85045");
  });

  test("completed adds epoch times without offset, seven fractional digits, subject TZ shifted by the offset", () => {
    const { subject, wear } = fixture();
    const body = uploadCompleted(subject, wear);
    assert.deepEqual(keys(body), ["firstEpochSubjectTZ", "firstEpochUTC", "lastEpochSubjectTZ", "lastEpochUTC", "status", "studyId", "subjectId", "uploadId"]);
    assert.equal(body.status, "completed");
    for (const k of ["firstEpochUTC", "firstEpochSubjectTZ", "lastEpochUTC", "lastEpochSubjectTZ"]) assert.match(body[k] as string, TICKS);
    const shift = Date.parse(`${(body.firstEpochSubjectTZ as string).slice(0, 19)}Z`) - Date.parse(`${(body.firstEpochUTC as string).slice(0, 19)}Z`);
    assert.equal(shift, subject.utcOffsetHours * 3_600_000);
    assert.ok((body.firstEpochUTC as string) < (body.lastEpochUTC as string));
  });

  test("error adds the documented message", () => {
    const { subject, wear } = fixture();
    const body = uploadError(subject, wear);
    assert.deepEqual(keys(body), ["message", "status", "studyId", "subjectId", "uploadId"]);
    assert.equal(body.status, "error");
    assert.equal(body.message, "A problem occured during upload processing");
  });
});

describe("raw_processing_complete", () => {
  test("snake_case, numeric ids, Z timestamps, capitalised status", () => {
    const { subject, wear } = fixture();
    const body = rawProcessingComplete(subject, wear, true);
    assert.deepEqual(keys(body), [
      "created_at_utc",
      "error_message",
      "max_event_timestamp",
      "min_event_timestamp",
      "monitor_serial",
      "status",
      "study_id",
      "subject_id",
      "subject_identifier",
    ]);
    assert.equal(typeof body.study_id, "number");
    assert.equal(typeof body.subject_id, "number");
    assert.equal(typeof body.subject_identifier, "string");
    assert.match(body.monitor_serial as string, /^TAS1[A-Z]\d{8}$/);
    for (const k of ["created_at_utc", "min_event_timestamp", "max_event_timestamp"]) assert.match(body[k] as string, ZULU);
    assert.equal(body.status, "Completed");
    assert.equal(body.error_message, null);
  });

  test("an Error carries an error message", () => {
    const { subject, wear } = fixture();
    const body = rawProcessingComplete(subject, wear, false);
    assert.equal(body.status, "Error");
    assert.equal(typeof body.error_message, "string");
  });
});

describe("data_retrieval_complete", () => {
  test("top-level fields, a GUID tracking id and a non-GUID client id", () => {
    const { subject, wear, rng } = fixture();
    const body = dataRetrievalComplete(subject, wear, rng);
    assert.deepEqual(keys(body), [
      "client_id",
      "completed_at_utc",
      "created_at_utc",
      "files",
      "request_status",
      "started_at_utc",
      "study_id",
      "subject_id",
      "subject_identifier",
      "tracking_id",
    ]);
    assert.match(body.tracking_id as string, GUID);
    assert.doesNotMatch(body.client_id as string, GUID);
    assert.equal(typeof body.study_id, "number");
    assert.equal(body.request_status, "Completed");
    for (const k of ["created_at_utc", "started_at_utc", "completed_at_utc"]) assert.match(body[k] as string, ZULU);
    assert.ok((body.created_at_utc as string) <= (body.started_at_utc as string) && (body.started_at_utc as string) <= (body.completed_at_utc as string));
  });

  test("files is an array: an avro file (index 1) and a summary (index 0) with the documented names", () => {
    const { subject, wear, rng } = fixture();
    const body = dataRetrievalComplete(subject, wear, rng);
    const files = body.files as Record<string, unknown>[];
    assert.equal(files.length, 2);
    for (const f of files) {
      assert.deepEqual(keys(f), ["file_index", "file_name", "file_size", "file_type", "max_event_timestamp", "min_event_timestamp", "monitor_serial"]);
      assert.match(f.min_event_timestamp as string, OFFSET);
      assert.equal(typeof f.file_size, "number");
    }
    const [avro, summary] = files;
    assert.equal(avro!.file_type, "avro");
    assert.equal(avro!.file_index, 1);
    assert.equal(avro!.monitor_serial, subject.monitorSerial);
    const min = Date.parse((avro!.min_event_timestamp as string).replace("+00:00", "Z")) / 1000;
    const max = Date.parse((avro!.max_event_timestamp as string).replace("+00:00", "Z")) / 1000;
    assert.equal(avro!.file_name, `${subject.subjectId}_${subject.monitorSerial}_${min}_${max}_${(avro!.file_name as string).slice(-9, -5)}.avro`);
    assert.match(avro!.file_name as string, /_[0-9a-f]{4}\.avro$/);
    assert.equal(summary!.file_type, "summary");
    assert.equal(summary!.file_index, 0);
    assert.equal(summary!.monitor_serial, null);
    assert.match(summary!.file_name as string, new RegExp(`^${subject.subjectId}_${body.tracking_id}-[0-9a-f]{4}\\.json$`));
  });
});

describe("daily_statistics_complete", () => {
  const FILTERS = ["nonFiltered", "wearFiltered", "wearAwakeFiltered", "wearSleepFiltered"];
  const TIMES = ["firstEpochDateTimeLocal", "firstEpochDateTimeUtc", "lastEpochDateTimeLocal", "lastEpochDateTimeUtc"];

  test("top-level fields: numeric ids, serial list, aggregates, epoch times", () => {
    const { subject, wear, rng } = fixture();
    const body = dailyStatisticsComplete(subject, wear, rng, 186);
    assert.deepEqual(
      keys(body),
      [
        "activityMonitorSerials",
        "date",
        "epochAggregation",
        "freedsonAggregations",
        "id",
        "mavmAggregation",
        "siteId",
        "staudenmayerAggregations",
        "studyId",
        "subjectId",
        "subjectIdentifier",
        ...TIMES,
      ].sort(),
    );
    for (const k of ["id", "studyId", "siteId", "subjectId"]) assert.equal(typeof body[k], "number");
    assert.deepEqual(body.activityMonitorSerials, [subject.monitorSerial]);
    assert.match(body.date as string, OFFSET);
    for (const k of TIMES) assert.match(body[k] as string, OFFSET);
  });

  test("epochAggregation has the minutes, the 4x4 count fields and the epoch times", () => {
    const { subject, wear, rng } = fixture();
    const agg = dailyStatisticsComplete(subject, wear, rng, 1).epochAggregation as Record<string, number>;
    const counts = ["totalNonFiltered", "wearFiltered", "wearAwakeFiltered", "wearSleepFiltered"].flatMap((p) =>
      ["AxisXCounts", "AxisYCounts", "AxisZCounts", "VectorMagnitude"].map((s) => p + s),
    );
    const minutes = ["wearMinutes", "nonWearMinutes", "sleepMinutes", "awakeMinutes", "wearAwakeMinutes", "wearSleepMinutes", "totalNonFilteredMinutes"];
    assert.deepEqual(keys(agg), [...minutes, ...counts, ...TIMES].sort());
    assert.equal(agg.wearMinutes! + agg.nonWearMinutes!, agg.totalNonFilteredMinutes);
    assert.equal(agg.wearAwakeMinutes! + agg.wearSleepMinutes!, agg.wearMinutes);
  });

  test("Freedson (arrays of 4x5 fields), Staudenmayer (4x8) and MAVM steps", () => {
    const { subject, wear, rng } = fixture();
    const body = dailyStatisticsComplete(subject, wear, rng, 1);
    const freedson = body.freedsonAggregations as Record<string, number>[];
    assert.equal(freedson.length, 1);
    assert.deepEqual(
      keys(freedson[0]!),
      FILTERS.flatMap((f) => ["Sedentary", "Light", "Moderate", "Vigorous", "VeryVigorous"].map((c) => `${f}VA${c}`)).sort(),
    );
    const staudenmayer = body.staudenmayerAggregations as Record<string, number>[];
    assert.deepEqual(
      keys(staudenmayer[0]!),
      FILTERS.flatMap((f) => ["Light", "Moderate", "Vigorous", "MVPA", "Sedentary", "NonSedentary", "Locomotion", "NonLocomotion"].map((c) => f + c)).sort(),
    );
    assert.deepEqual(keys(body.mavmAggregation as object), ["nonFilteredSteps", "wearAwakeFilteredSteps", "wearFilteredSteps", "wearSleepFilteredSteps"]);
    const total = (body.epochAggregation as Record<string, number>).totalNonFilteredMinutes! * 60;
    const sum = Object.entries(freedson[0]!)
      .filter(([k]) => k.startsWith("nonFiltered"))
      .reduce((a, [, v]) => a + v, 0);
    assert.equal(sum, total);
  });
});

describe("cp2_daily_statistics_complete", () => {
  test("the documented fields, a local date without offset, lower-case name/count pairs", () => {
    const { subject, wear, rng } = fixture();
    const body = cp2DailyStatisticsComplete(subject, wear, rng, 1869240);
    const expected = [
      "studyId",
      "subjectId",
      "siteId",
      "dayStatId",
      "subjectIdentifier",
      "date",
      "bouts",
      "calories",
      "cutpoints",
      "axisXCounts",
      "axisYCounts",
      "axisZCounts",
      "epochs",
      "mvpa",
      "steps",
      "totalMinutes",
      "mets",
      "wearFilteredBouts",
      "wearFilteredCalories",
      "wearFilteredCutPoints",
      "wearFilteredAxisXCounts",
      "wearFilteredAxisYCounts",
      "wearFilteredAxisZCounts",
      "wearFilteredMVPA",
      "wearFilteredSteps",
      "wearMinutes",
      "wearFilteredMets",
      "awakeWearMinutes",
      "awakeWearFilteredAxisXCounts",
      "awakeWearFilteredAxisYCounts",
      "awakeWearFilteredAxisZCounts",
      "awakeWearFilteredMVPA",
      "awakeWearFilteredCutPoints",
      "awakeWearFilteredBouts",
      "awakeWearFilteredCalories",
      "awakeWearFilteredSteps",
      "awakeWearFilteredMets",
    ];
    assert.deepEqual(keys(body), expected.sort());
    assert.match(body.date as string, LOCAL);
    assert.ok((body.date as string).endsWith("T00:00:00"));
    for (const k of ["studyId", "subjectId", "siteId", "dayStatId", "calories", "epochs", "mets", "steps"]) assert.equal(typeof body[k], "number", k);
    const cutpoints = body.cutpoints as { name: string; count: number }[];
    assert.deepEqual(
      cutpoints.map((c) => c.name),
      ["Sedentary", "Light", "Lifestyle", "Moderate", "Vigorous", "Very Vigorous"],
    );
    assert.equal(
      cutpoints.reduce((a, c) => a + c.count, 0),
      body.epochs,
    );
    assert.deepEqual(
      (body.bouts as { name: string }[]).map((b) => b.name),
      ["10 minutes or more", "20 minutes or more", "30 minutes or more", "40 minutes or more"],
    );
    for (const b of body.bouts as object[]) assert.deepEqual(keys(b), ["count", "name"]);
  });
});

test("validation body: PascalCase keys, string values", () => {
  assert.deepEqual(validationBody("74", "1d3ad7a1-91c9-4ffc-8562-5bad545e6a40"), { WebhookId: "74", ValidationCode: "1d3ad7a1-91c9-4ffc-8562-5bad545e6a40" });
});

describe("subjectEvents", () => {
  test("yields the pipeline in order: upload started, completed/error, raw, retrieval, daily, cp2", () => {
    const rng = createRng(42);
    const [subject] = createSubjects(rng, 1);
    const stream = subjectEvents(subject!, rng, createIdCounters(rng));
    const seen = Array.from({ length: 200 }, () => stream.next().value);
    for (const e of seen) assert.ok((CENTREPOINT_EVENTS as readonly string[]).includes(e.event));
    // Every cycle starts with an upload "started"; each step follows the one before it.
    const next: Record<string, string[]> = {
      "upload/started": ["upload/completed", "upload/error"],
      "upload/completed": ["raw_processing_complete"],
      "upload/error": ["upload/started"],
      raw_processing_complete: ["data_retrieval_complete", "upload/started"],
      data_retrieval_complete: ["daily_statistics_complete"],
      daily_statistics_complete: ["cp2_daily_statistics_complete"],
      cp2_daily_statistics_complete: ["upload/started"],
    };
    const label = (e: (typeof seen)[number]) => (e.event === "upload" ? `upload/${e.body.status}` : e.event);
    assert.equal(label(seen[0]!), "upload/started");
    for (let i = 1; i < seen.length; i++) assert.ok(next[label(seen[i - 1]!)]!.includes(label(seen[i]!)), `${label(seen[i - 1]!)} -> ${label(seen[i]!)}`);
    // The error branches occur in a long enough stream (8% upload errors, 5% raw errors).
    assert.ok(seen.some((e) => e.body.status === "error"));
  });

  test("the same seed gives the same payloads; another seed different ones", () => {
    const take = (seed: number) => {
      const rng = createRng(seed);
      const stream = subjectEvents(createSubjects(rng, 1)[0]!, rng, createIdCounters(rng));
      return JSON.stringify(Array.from({ length: 12 }, () => stream.next().value));
    };
    assert.equal(take(7), take(7));
    assert.notEqual(take(7), take(8));
  });
});

test("splitInteger keeps the total", () => {
  assert.deepEqual(splitInteger(10, [1, 1, 1]), [4, 3, 3]);
  assert.equal(
    splitInteger(4_321, [60, 25, 10, 4, 1]).reduce((a, b) => a + b, 0),
    4_321,
  );
});

describe("uploadBody (the fixed body of the vitest suite, the chaos suite and the bench)", () => {
  test("is the protocol reference's upload example, the golden file's body, with overrides merged in", async () => {
    const golden = JSON.parse(await readFile(new URL("../test/providers/centrepoint/golden/upload-completed.json", import.meta.url), "utf8")) as {
      body: unknown;
    };
    assert.deepEqual(JSON.parse(uploadBody()), golden.body);
    assert.deepEqual(JSON.parse(uploadBody({ uploadId: "7" })), { ...(golden.body as object), uploadId: "7" });
  });

  test("imports no node: module, so workerd (vitest) loads it", async () => {
    const source = await readFile(new URL("../harness/centrepoint/payloads.ts", import.meta.url), "utf8");
    const imports = [...source.matchAll(/^import[^"]*"([^"]+)"/gm)].map((m) => m[1]!);
    assert.ok(imports.length > 0);
    for (const spec of imports) assert.ok(!spec.startsWith("node:"), `payloads.ts imports ${spec}`);
    const prng = await readFile(new URL("../harness/prng.ts", import.meta.url), "utf8");
    assert.doesNotMatch(prng, /from "node:/);
  });
});
