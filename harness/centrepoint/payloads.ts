import type { CentrePointEvent } from "../../src/providers/centrepoint/constants.ts";
import { guidLike, type Rng } from "../prng.ts";

/**
 * Payload factories: bodies shaped exactly as in the protocol reference (section 4), with
 * plausible values from a seeded generator. Field casing differs per event on purpose:
 * upload is camelCase with string ids, raw processing and data retrieval are snake_case with
 * numeric ids, daily statistics are camelCase with numeric ids, validation is PascalCase.
 */

/** A JSON object body. */
export type Body = Record<string, unknown>;

/**
 * The protocol reference's `upload` example (status completed) as a JSON string, with `overrides`
 * merged in: the fixed body of the Workers-runtime tests, the chaos suite and the bench. This module
 * imports no `node:` module, so workerd (vitest) and Node both load it.
 */
export function uploadBody(overrides: Body = {}): string {
  return JSON.stringify({
    status: "completed",
    firstEpochUTC: "2016-06-14T20:46:00.0000000",
    firstEpochSubjectTZ: "2016-06-14T15:46:00.0000000",
    lastEpochUTC: "2016-06-14T20:47:00.0000000",
    lastEpochSubjectTZ: "2016-06-14T15:47:00.0000000",
    uploadId: "85045",
    subjectId: "44732",
    studyId: "189",
    ...overrides,
  });
}

/** One simulated CentrePoint notification: the `X-ActiGraph-Event` name and the body. */
export interface SimEvent {
  event: CentrePointEvent;
  body: Body;
}

/** A study participant wearing one monitor. */
export interface SimSubject {
  studyId: number;
  siteId: number;
  subjectId: number;
  subjectIdentifier: string;
  monitorSerial: string;
  /** Offset of the subject's time zone from UTC, in hours (e.g. -5). */
  utcOffsetHours: number;
  /** UTC midnight (ms) of the calendar date of the subject's first simulated wear day. */
  firstDay: number;
}

/** One wear day of a subject and the upload that carries it; all times are epoch ms in UTC. */
export interface Wear {
  uploadId: number;
  /** UTC instant of local midnight that starts the wear day. */
  dayStart: number;
  firstEpoch: number;
  lastEpoch: number;
  uploadedAt: number;
}

/** Counters shared by all subjects of a run, so record ids are unique. */
export interface IdCounters {
  upload: number;
  dailyStatistics: number;
  cp2DayStat: number;
}

const HOUR = 3_600_000;
const MINUTE = 60_000;
const DAY = 24 * HOUR;
const iso = (ms: number): string => new Date(ms).toISOString();

/** `2016-06-14T20:46:00.0000000`: no offset, seven fractional digits (upload events). */
export const formatTicks = (ms: number): string => `${iso(ms).slice(0, 19)}.0000000`;
/** `2019-07-19T19:30:28Z` (raw processing and data retrieval events). */
export const formatZulu = (ms: number): string => `${iso(ms).slice(0, 19)}Z`;
/** `2019-07-17T16:52:53+00:00` (data retrieval files, daily statistics). */
export const formatOffset = (ms: number): string => `${iso(ms).slice(0, 19)}+00:00`;
/** `2013-08-07T00:00:00`: a local date-time without offset (cp2 daily statistics). */
export const formatLocal = (ms: number): string => iso(ms).slice(0, 19);

/** Makes `count` subjects of one study, spread over a few sites. */
export function createSubjects(rng: Rng, count: number): SimSubject[] {
  const studyId = rng.int(100, 39_999);
  const sites = Array.from({ length: Math.min(3, count) }, () => rng.int(1_000, 9_999));
  const firstSubjectId = rng.int(10_000, 90_000);
  const firstDay = Date.UTC(2026, 0, 5) + rng.int(0, 200) * DAY;
  return Array.from({ length: count }, (_, i) => ({
    studyId,
    siteId: sites[i % sites.length]!,
    subjectId: firstSubjectId + i * rng.int(1, 7),
    subjectIdentifier: String(100 + i).padStart(6, "0"),
    monitorSerial: `TAS1${rng.pick(["D", "E", "F", "Z"])}${rng.int(10_000_000, 99_999_999)}`,
    utcOffsetHours: rng.pick([-8, -7, -6, -5, 0, 1, 2]),
    firstDay: firstDay + rng.int(0, 3) * DAY,
  }));
}

/** The wear day `dayIndex` of a subject: on-wrist from morning to night, uploaded the next day. */
export function createWear(subject: SimSubject, rng: Rng, uploadId: number, dayIndex: number): Wear {
  const dayStart = subject.firstDay + dayIndex * DAY - subject.utcOffsetHours * HOUR;
  const firstEpoch = dayStart + rng.int(6, 9) * HOUR + rng.int(0, 59) * MINUTE;
  const lastEpoch = dayStart + rng.int(20, 23) * HOUR + rng.int(0, 59) * MINUTE;
  return { uploadId, dayStart, firstEpoch, lastEpoch, uploadedAt: lastEpoch + rng.int(1, 20) * HOUR + rng.int(0, 3_599) * 1_000 };
}

const toLocal = (subject: SimSubject, ms: number): number => ms + subject.utcOffsetHours * HOUR;
const uploadIds = (s: SimSubject, w: Wear) => ({ uploadId: String(w.uploadId), subjectId: String(s.subjectId), studyId: String(s.studyId) });

/** `upload` with status `started`. */
export function uploadStarted(s: SimSubject, w: Wear): Body {
  return { status: "started", ...uploadIds(s, w) };
}

/** `upload` with status `completed`: first and last epoch in UTC and in the subject's time zone. */
export function uploadCompleted(s: SimSubject, w: Wear): Body {
  return {
    status: "completed",
    firstEpochUTC: formatTicks(w.firstEpoch),
    firstEpochSubjectTZ: formatTicks(toLocal(s, w.firstEpoch)),
    lastEpochUTC: formatTicks(w.lastEpoch),
    lastEpochSubjectTZ: formatTicks(toLocal(s, w.lastEpoch)),
    ...uploadIds(s, w),
  };
}

/** `upload` with status `error` (the documented message, typo included). */
export function uploadError(s: SimSubject, w: Wear): Body {
  return { status: "error", message: "A problem occured during upload processing", ...uploadIds(s, w) };
}

/** `raw_processing_complete`, `Completed` or `Error`. */
export function rawProcessingComplete(s: SimSubject, w: Wear, ok: boolean): Body {
  return {
    study_id: s.studyId,
    subject_id: s.subjectId,
    subject_identifier: s.subjectIdentifier,
    monitor_serial: s.monitorSerial,
    created_at_utc: formatZulu(w.uploadedAt + 2_000),
    min_event_timestamp: formatZulu(w.firstEpoch),
    max_event_timestamp: formatZulu(w.lastEpoch - 1_000),
    status: ok ? "Completed" : "Error",
    error_message: ok ? null : "Raw data processing failed",
  };
}

/** `data_retrieval_complete` for a RAW request over the wear day: one avro file and its summary. */
export function dataRetrievalComplete(s: SimSubject, w: Wear, rng: Rng): Body {
  const trackingId = trackingGuid(rng);
  const created = w.uploadedAt + rng.int(5, 120) * MINUTE;
  const started = created + rng.int(1, 10) * 1_000;
  const completed = started + rng.int(5, 300) * 1_000;
  const min = formatOffset(w.firstEpoch);
  const max = formatOffset(w.lastEpoch - 1_000);
  const unix = (ms: number) => Math.floor(ms / 1_000);
  return {
    client_id: alphanumeric(rng, 23),
    tracking_id: trackingId,
    study_id: s.studyId,
    subject_id: s.subjectId,
    subject_identifier: s.subjectIdentifier,
    created_at_utc: formatZulu(created),
    started_at_utc: formatZulu(started),
    completed_at_utc: formatZulu(completed),
    request_status: "Completed",
    files: [
      {
        monitor_serial: s.monitorSerial,
        file_type: "avro",
        min_event_timestamp: min,
        max_event_timestamp: max,
        file_size: Math.round(((w.lastEpoch - w.firstEpoch) / 1_000) * rng.int(20, 30)),
        file_index: 1,
        file_name: `${s.subjectId}_${s.monitorSerial}_${unix(w.firstEpoch)}_${unix(w.lastEpoch - 1_000)}_${rng.hex(4)}.avro`,
      },
      {
        monitor_serial: null,
        file_type: "summary",
        min_event_timestamp: min,
        max_event_timestamp: max,
        file_size: rng.int(250, 350),
        file_index: 0,
        file_name: `${s.subjectId}_${trackingId}-${rng.hex(4)}.json`,
      },
    ],
  };
}

/** Minutes of a wear day, split the way the daily-statistics aggregates split them. */
export interface DayMinutes {
  total: number;
  wear: number;
  nonWear: number;
  sleep: number;
  awake: number;
}

/** Splits the minutes between first and last epoch into wear/non-wear and sleep/awake. */
export function splitDay(w: Wear, rng: Rng): DayMinutes {
  const total = Math.round((w.lastEpoch - w.firstEpoch) / MINUTE) + 1;
  const nonWear = rng.int(0, Math.min(90, Math.floor(total / 5)));
  const wear = total - nonWear;
  const sleep = rng.int(0, Math.floor(wear / 6));
  return { total, wear, nonWear, sleep, awake: wear - sleep };
}

/** Splits `total` into integer parts proportional to `weights`; the parts sum to `total`. */
export function splitInteger(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const parts = weights.map((w) => Math.floor((total * w) / sum));
  parts[0]! += total - parts.reduce((a, b) => a + b, 0);
  return parts;
}

const FILTERS = ["nonFiltered", "wearFiltered", "wearAwakeFiltered", "wearSleepFiltered"] as const;
const FREEDSON = ["Sedentary", "Light", "Moderate", "Vigorous", "VeryVigorous"] as const;
const STAUDENMAYER = ["Light", "Moderate", "Vigorous", "MVPA", "Sedentary", "NonSedentary", "Locomotion", "NonLocomotion"] as const;

/** `daily_statistics_complete` for the wear day (epoch, Freedson, Staudenmayer and MAVM aggregates). */
export function dailyStatisticsComplete(s: SimSubject, w: Wear, rng: Rng, id: number): Body {
  const m = splitDay(w, rng);
  const minutesBy = { nonFiltered: m.total, wearFiltered: m.wear, wearAwakeFiltered: m.awake, wearSleepFiltered: m.sleep };
  const cpm = rng.int(150, 900);
  const counts: Record<string, number> = {};
  for (const [prefix, minutes] of [
    ["totalNonFiltered", m.total],
    ["wearFiltered", m.wear],
    ["wearAwakeFiltered", m.awake],
    ["wearSleepFiltered", m.sleep],
  ] as const) {
    const [x, y, z] = [0.6, 0.7, 0.8].map((f) => Math.round(minutes * cpm * f));
    Object.assign(counts, {
      [`${prefix}AxisXCounts`]: x,
      [`${prefix}AxisYCounts`]: y,
      [`${prefix}AxisZCounts`]: z,
      [`${prefix}VectorMagnitude`]: Math.round(Math.hypot(x!, y!, z!)),
    });
  }
  const times = {
    firstEpochDateTimeUtc: formatOffset(w.firstEpoch),
    lastEpochDateTimeUtc: formatOffset(w.lastEpoch),
    firstEpochDateTimeLocal: formatOffset(toLocal(s, w.firstEpoch)),
    lastEpochDateTimeLocal: formatOffset(toLocal(s, w.lastEpoch)),
  };
  const freedson: Record<string, number> = {};
  const staudenmayer: Record<string, number> = {};
  for (const f of FILTERS) {
    const seconds = minutesBy[f] * 60;
    splitInteger(seconds, [60, 25, 10, 4, 1]).forEach((v, i) => (freedson[`${f}VA${FREEDSON[i]}`] = v));
    const [light, moderate, vigorous, sedentary] = splitInteger(seconds, [30, 8, 2, 60]);
    const locomotion = Math.round((moderate! + vigorous!) * 0.7);
    const values = [light!, moderate!, vigorous!, moderate! + vigorous!, sedentary!, seconds - sedentary!, locomotion, seconds - locomotion];
    values.forEach((v, i) => (staudenmayer[`${f}${STAUDENMAYER[i]}`] = v));
  }
  const steps = Math.round(m.awake * rng.int(4, 12));
  return {
    subjectIdentifier: s.subjectIdentifier,
    id,
    studyId: s.studyId,
    subjectId: s.subjectId,
    date: formatOffset(w.dayStart),
    siteId: s.siteId,
    activityMonitorSerials: [s.monitorSerial],
    epochAggregation: {
      wearMinutes: m.wear,
      nonWearMinutes: m.nonWear,
      sleepMinutes: m.sleep,
      awakeMinutes: m.total - m.sleep,
      wearAwakeMinutes: m.awake,
      wearSleepMinutes: m.sleep,
      totalNonFilteredMinutes: m.total,
      ...counts,
      ...times,
    },
    freedsonAggregations: [freedson],
    staudenmayerAggregations: [staudenmayer],
    mavmAggregation: { nonFilteredSteps: steps, wearFilteredSteps: steps, wearAwakeFilteredSteps: steps, wearSleepFilteredSteps: 0 },
    ...times,
  };
}

const CUTPOINTS = ["Sedentary", "Light", "Lifestyle", "Moderate", "Vigorous", "Very Vigorous"] as const;
const BOUTS = ["10 minutes or more", "20 minutes or more", "30 minutes or more", "40 minutes or more"] as const;

/** Per-filter totals of a cp2 daily-statistics record. */
function cp2Totals(minutes: number, rng: Rng) {
  const cutpoints = splitInteger(minutes, [55, 25, 10, 7, 2, 1]).map((count, i) => ({ name: CUTPOINTS[i]!, count }));
  const mvpa = cutpoints.slice(3).reduce((a, c) => a + c.count, 0);
  const first = rng.int(0, 4);
  const bouts = BOUTS.map((name, i) => ({ name, count: Math.max(0, first - i) }));
  const cpm = rng.int(150, 900);
  const [x, y, z] = [0.6, 0.7, 0.8].map((f) => Math.round(minutes * cpm * f));
  const mets = Math.round((1.2 + rng.next() * 1.3) * 100) / 100;
  return { cutpoints, bouts, mvpa, x: x!, y: y!, z: z!, steps: minutes * rng.int(2, 9), calories: minutes * (0.05 + rng.next() * 0.2), mets };
}

/** `cp2_daily_statistics_complete` for the wear day: all-data, wear-filtered and awake-wear totals. */
export function cp2DailyStatisticsComplete(s: SimSubject, w: Wear, rng: Rng, dayStatId: number): Body {
  const m = splitDay(w, rng);
  const all = cp2Totals(m.total, rng);
  const wear = cp2Totals(m.wear, rng);
  const awake = cp2Totals(m.awake, rng);
  return {
    studyId: s.studyId,
    subjectId: s.subjectId,
    siteId: s.siteId,
    dayStatId,
    subjectIdentifier: s.subjectIdentifier,
    date: formatLocal(toLocal(s, w.dayStart)),
    bouts: all.bouts,
    calories: all.calories,
    cutpoints: all.cutpoints,
    axisXCounts: all.x,
    axisYCounts: all.y,
    axisZCounts: all.z,
    epochs: m.total,
    mvpa: all.mvpa,
    steps: all.steps,
    totalMinutes: m.total,
    mets: all.mets,
    wearFilteredBouts: wear.bouts,
    wearFilteredCalories: wear.calories,
    wearFilteredCutPoints: wear.cutpoints,
    wearFilteredAxisXCounts: wear.x,
    wearFilteredAxisYCounts: wear.y,
    wearFilteredAxisZCounts: wear.z,
    wearFilteredMVPA: wear.mvpa,
    wearFilteredSteps: wear.steps,
    wearMinutes: m.wear,
    wearFilteredMets: wear.mets,
    awakeWearMinutes: m.awake,
    awakeWearFilteredAxisXCounts: awake.x,
    awakeWearFilteredAxisYCounts: awake.y,
    awakeWearFilteredAxisZCounts: awake.z,
    awakeWearFilteredMVPA: awake.mvpa,
    awakeWearFilteredCutPoints: awake.cutpoints,
    awakeWearFilteredBouts: awake.bouts,
    awakeWearFilteredCalories: awake.calories,
    awakeWearFilteredSteps: awake.steps,
    awakeWearFilteredMets: awake.mets,
  };
}

/** The validation handshake body: PascalCase keys, string values, the code equal to the header's. */
export function validationBody(webhookId: string, code: string): Body {
  return { WebhookId: webhookId, ValidationCode: code };
}

/**
 * A subject's endless event stream, in pipeline order, one wear day per cycle: upload started,
 * completed (or error, which ends the cycle), raw processing (an error ends the cycle), data
 * retrieval, daily statistics, cp2 daily statistics.
 */
export function* subjectEvents(subject: SimSubject, rng: Rng, ids: IdCounters): Generator<SimEvent, never> {
  for (let day = 0; ; day++) {
    const wear = createWear(subject, rng, ids.upload++, day);
    yield { event: "upload", body: uploadStarted(subject, wear) };
    if (rng.chance(0.08)) {
      yield { event: "upload", body: uploadError(subject, wear) };
      continue;
    }
    yield { event: "upload", body: uploadCompleted(subject, wear) };
    const rawOk = !rng.chance(0.05);
    yield { event: "raw_processing_complete", body: rawProcessingComplete(subject, wear, rawOk) };
    if (!rawOk) continue;
    yield { event: "data_retrieval_complete", body: dataRetrievalComplete(subject, wear, rng) };
    yield { event: "daily_statistics_complete", body: dailyStatisticsComplete(subject, wear, rng, ids.dailyStatistics++) };
    yield { event: "cp2_daily_statistics_complete", body: cp2DailyStatisticsComplete(subject, wear, rng, ids.cp2DayStat++) };
  }
}

/** Fresh id counters for a run, starting at plausible magnitudes. */
export function createIdCounters(rng: Rng): IdCounters {
  return { upload: rng.int(80_000, 400_000), dailyStatistics: rng.int(100, 9_000), cp2DayStat: rng.int(1_000_000, 2_000_000) };
}

/** A GUID whose version and variant digits are valid (the data-retrieval tracking id is a real GUID). */
function trackingGuid(rng: Rng): string {
  const h = guidLike(rng).split("-");
  return `${h[0]}-${h[1]}-4${h[2]!.slice(1)}-${rng.pick(["8", "9", "a", "b"])}${h[3]!.slice(1)}-${h[4]}`;
}

/** The API client id of the requester: alphanumeric, not GUID-shaped (as in the example). */
function alphanumeric(rng: Rng, length: number): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length }, () => chars[rng.int(0, chars.length - 1)]).join("");
}
