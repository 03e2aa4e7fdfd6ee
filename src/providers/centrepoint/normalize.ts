/**
 * CentrePoint delivery → CloudEvents 1.0 envelope. Pure: every input is passed in, nothing is read
 * from the clock or the network, and no input makes it throw. Mapping rules: docs/events.md.
 */
import { err, ok, type Result } from "../../lib/result";
import { CENTREPOINT_EVENTS, CLOUDEVENT_TYPE_PREFIX, type CentrePointEvent, type DeliveryProvenance, type EventKind } from "./constants";

/** Everything normalization needs about one received delivery. */
export interface NormalizeInput {
  sourceId: string;
  deliveryId: string;
  /** `X-ActiGraph-Event` header value in any casing, or null when the header is missing. */
  event: string | null;
  /** When the relay received the delivery, epoch milliseconds. */
  receivedAt: number;
  /** The raw body, exactly as received. */
  body: Uint8Array;
  /** The body already parsed by `parseDeliveryBody` (ingress parses once); parsed here when absent. */
  parsed?: ParsedBody;
  /** How the delivery reached the relay (default "webhook"); a backfill is marked in the envelope. */
  provenance?: DeliveryProvenance;
}

/** A CloudEvents 1.0 event in structured JSON mode, with the `centrepointevent` extension. */
export interface CloudEvent {
  specversion: "1.0";
  id: string;
  /** URI-reference `/centrepoint/sources/<sourceId>`. */
  source: string;
  /** `CLOUDEVENT_TYPE_PREFIX + kind`. */
  type: string;
  /** `studies/<studyId>/subjects/<subjectId>`; absent unless both ids are known. */
  subject?: string;
  /** UTC, millisecond precision, `Z`; absent only when `receivedAt` is not a valid time. */
  time?: string;
  datacontenttype: "application/json";
  /** Wire event name, trimmed and lower-cased; absent when the header was missing or blank. */
  centrepointevent?: string;
  /** Extension, backfilled events only: "centrepoint-history" (read from CentrePoint's delivery history, not pushed). */
  provenance?: "centrepoint-history";
  /** camelCase fields (docs/events.md) plus `original`, the parsed body untouched. */
  data: Record<string, unknown>;
}

/** The normalized form of one delivery. */
export interface NormalizedEvent {
  kind: EventKind;
  /** Same value as `envelope.subject`, or null. */
  subject: string | null;
  /** Why an operator should look at this delivery ("; "-joined reasons), or null. */
  attention: string | null;
  envelope: CloudEvent;
  /** `data` without `original` and the passed-through fields: what a receiver gets when the whole envelope cannot be kept. */
  reducedData: Record<string, unknown>;
  /** Identifiers an operator searches by (upload id, tracking id, subject identifier, subject), each at most MAX_SEARCH_KEY characters. */
  searchKeys: string[];
}

/** Longest identifier kept as a search key (the admin search takes at most 200 characters). */
export const MAX_SEARCH_KEY = 200;

/** A successfully parsed ISO-8601 date-time. */
export interface ParsedTimestamp {
  /** The instant, epoch ms; a value without an offset is read as UTC. Sub-millisecond digits are truncated. */
  epochMs: number;
  /** Whether the text carried `Z` or a numeric offset. */
  hasOffset: boolean;
}

type Body = Record<string, unknown>;

/** What one wire-event mapper extracts from an object body. */
interface Mapped {
  kind: EventKind;
  studyId: string | null;
  subjectId: string | null;
  /** The payload's own "when it happened" instant (UTC ISO), or null to use receivedAt. */
  time: string | null;
  /** Normalized fields, without `original`. */
  fields: Record<string, unknown>;
  /** Fields passed through as given (daily statistics' aggregations); placed before `fields` in `data`. */
  extra?: Record<string, unknown>;
}

type Mapper = (body: Body, problems: string[]) => Mapped;

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?)?$/;

/** Parses `YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|±HH[[:]MM]]`, checking every field's range. */
export function parseTimestamp(text: string): Result<ParsedTimestamp> {
  const m = TIMESTAMP.exec(text);
  if (!m) return err("not an ISO-8601 date-time");
  const [, y, mo, d, h, mi, s = "0", frac = "", z, sign, oh, om = "0"] = m;
  const year = Number(y),
    month = Number(mo),
    day = Number(d);
  const hour = Number(h),
    minute = Number(mi),
    second = Number(s);
  if (month < 1 || month > 12) return err("month out of range");
  if (day < 1 || day > daysInMonth(year, month)) return err("day out of range");
  if (hour > 23 || minute > 59 || second > 59) return err("time of day out of range");
  const offsetHours = Number(oh ?? "0"),
    offsetMinutes = Number(om);
  if (offsetHours > 23 || offsetMinutes > 59) return err("offset out of range");
  const offsetMs = (sign === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  const millis = Number(frac.slice(0, 3).padEnd(3, "0"));
  const localMs = daysFromCivil(year, month, day) * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + millis;
  return ok({ epochMs: localMs - offsetMs, hasOffset: z !== undefined || sign !== undefined });
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  return month === 2 ? (isLeapYear(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** `YYYY-MM-DDTHH:mm:ss.sssZ`, or null when `ms` is not a representable instant. */
function formatUtc(ms: number): string | null {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** Longest preview `show` writes. */
const SHOW_MAX = 60;

/**
 * Short printable form of a JSON value for attention messages: its JSON text (as JSON.stringify
 * writes it) cut to SHOW_MAX characters. Written from the value's first parts only, with an
 * explicit stack instead of recursion, so no depth or size of value makes it throw (JSON.stringify
 * overflows the stack on objects nested a few thousand levels deep).
 */
function show(value: unknown): string {
  if (typeof value === "number") return String(value);
  let text = "";
  const todo: ({ text: string } | { value: unknown })[] = [{ value }];
  while (todo.length > 0 && text.length <= SHOW_MAX) {
    const part = todo.pop()!;
    if ("text" in part) {
      text += part.text;
      continue;
    }
    const v = part.value;
    if (typeof v === "string") text += JSON.stringify(v.slice(0, SHOW_MAX + 1));
    else if (typeof v === "number") text += Number.isFinite(v) ? String(v) : "null";
    else if (typeof v !== "object" || v === null) text += String(v);
    else {
      // Each entry takes at least one character: no more than SHOW_MAX of them can show.
      const entries: [string | null, unknown][] = Array.isArray(v)
        ? v.slice(0, SHOW_MAX).map((item) => [null, item])
        : Object.keys(v)
            .slice(0, SHOW_MAX)
            .map((key) => [key, (v as Record<string, unknown>)[key]]);
      todo.push({ text: Array.isArray(v) ? "]" : "}" });
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i]!;
        todo.push({ value: item });
        todo.push({ text: `${i > 0 ? "," : ""}${key === null ? "" : `${JSON.stringify(key)}:`}` });
      }
      todo.push({ text: Array.isArray(v) ? "[" : "{" });
    }
  }
  return text.length > SHOW_MAX ? `${text.slice(0, SHOW_MAX - 3)}...` : text;
}

/** The field as given, or null when absent. */
function field(body: Body, key: string): unknown {
  return body[key] ?? null;
}

/** An id as a string: finite numbers are stringified, strings trimmed; absent or blank → null. */
function idField(body: Body, key: string, problems: string[]): string | null {
  const value = body[key];
  if (typeof value === "string") return value.trim() || null;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (value != null) problems.push(`${key} is not a usable id: ${show(value)}`);
  return null;
}

/** The value as a UTC `...Z` instant (no offset reads as UTC), or null when it is not a valid timestamp. */
function toUtc(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const parsed = parseTimestamp(value);
  return parsed.ok ? formatUtc(parsed.value.epochMs) : null;
}

/** A UTC instant as `...Z`; kept as given, with a problem, when unparseable. */
function utcField(body: Body, key: string, problems: string[], label = key): unknown {
  const value = body[key];
  if (value == null) return null;
  const iso = toUtc(value);
  if (iso === null) problems.push(`${label} is not a valid timestamp: ${show(value)}`);
  return iso ?? value;
}

/** A subject-local time, kept exactly as given; a problem when it does not parse as a date-time. */
function localField(body: Body, key: string, problems: string[], label = key): unknown {
  const value = body[key];
  if (value == null) return null;
  if (typeof value !== "string" || !parseTimestamp(value).ok) {
    problems.push(`${label} is not a valid timestamp: ${show(value)}`);
  }
  return value;
}

/** A status value trimmed and lower-cased, or null when absent or not a string. */
function statusField(body: Body, key: string): string | null {
  const value = body[key];
  return typeof value === "string" ? value.trim().toLowerCase() : null;
}

/** Attention reason for a missing or unrecognised status field. */
function statusProblem(event: CentrePointEvent, key: string, body: Body): string {
  return body[key] == null ? `${event} without ${key}` : `${event} with unknown ${key} ${show(body[key])}`;
}

/** The kind for the body's status, or "unknown" with a problem naming the status. */
function kindByStatus(event: CentrePointEvent, key: string, body: Body, kinds: ReadonlyMap<string, EventKind>, problems: string[]): EventKind {
  const kind = kinds.get(statusField(body, key) ?? "");
  if (kind) return kind;
  problems.push(statusProblem(event, key, body));
  return "unknown";
}

/** The body's fields minus `normalized`, copied as given (safe for a `__proto__` key). */
function passThrough(body: Body, normalized: ReadonlySet<string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([key]) => !normalized.has(key) && key !== "original"));
}

const UPLOAD_KINDS: ReadonlyMap<string, EventKind> = new Map([
  ["started", "upload.started"],
  ["completed", "upload.completed"],
  ["error", "upload.error"],
]);

const RAW_PROCESSING_KINDS: ReadonlyMap<string, EventKind> = new Map([
  ["completed", "raw_processing.completed"],
  ["error", "raw_processing.error"],
]);

/** upload: camelCase body, ids usually strings; time = receivedAt (the epochs bound the data, not the event). */
const mapUpload: Mapper = (body, problems) => {
  const kind = kindByStatus("upload", "status", body, UPLOAD_KINDS, problems);
  const studyId = idField(body, "studyId", problems);
  const subjectId = idField(body, "subjectId", problems);
  return {
    kind,
    studyId,
    subjectId,
    time: null,
    fields: {
      status: statusField(body, "status"),
      uploadId: idField(body, "uploadId", problems),
      studyId,
      subjectId,
      errorMessage: field(body, "message"),
      firstEpochUtc: utcField(body, "firstEpochUTC", problems),
      lastEpochUtc: utcField(body, "lastEpochUTC", problems),
      firstEpochLocal: localField(body, "firstEpochSubjectTZ", problems),
      lastEpochLocal: localField(body, "lastEpochSubjectTZ", problems),
    },
  };
};

/** raw_processing_complete: snake_case, numeric ids; time = created_at_utc. */
const mapRawProcessing: Mapper = (body, problems) => {
  const kind = kindByStatus("raw_processing_complete", "status", body, RAW_PROCESSING_KINDS, problems);
  const studyId = idField(body, "study_id", problems);
  const subjectId = idField(body, "subject_id", problems);
  return {
    kind,
    studyId,
    subjectId,
    time: toUtc(body.created_at_utc),
    fields: {
      status: statusField(body, "status"),
      studyId,
      subjectId,
      subjectIdentifier: field(body, "subject_identifier"),
      monitorSerial: field(body, "monitor_serial"),
      createdAtUtc: utcField(body, "created_at_utc", problems),
      minEventTimestamp: utcField(body, "min_event_timestamp", problems),
      maxEventTimestamp: utcField(body, "max_event_timestamp", problems),
      errorMessage: field(body, "error_message"),
    },
  };
};

/** data_retrieval_complete: error if request_status is error/failed or error_message is non-blank; time = completed_at_utc. */
const mapDataRetrieval: Mapper = (body, problems) => {
  const status = statusField(body, "request_status");
  const message = body.error_message;
  const hasError = typeof message === "string" ? message.trim() !== "" : message != null;
  let kind: EventKind = "unknown";
  if (status === "error" || status === "failed" || hasError) kind = "data_retrieval.error";
  else if (status === "completed") kind = "data_retrieval.completed";
  else problems.push(statusProblem("data_retrieval_complete", "request_status", body));
  const studyId = idField(body, "study_id", problems);
  const subjectId = idField(body, "subject_id", problems);
  const files = Array.isArray(body.files) ? body.files.map((file: unknown, i) => mapFile(file, `files[${i}]`, problems)) : field(body, "files");
  return {
    kind,
    studyId,
    subjectId,
    time: toUtc(body.completed_at_utc),
    fields: {
      status,
      clientId: field(body, "client_id"),
      trackingId: field(body, "tracking_id"),
      studyId,
      subjectId,
      subjectIdentifier: field(body, "subject_identifier"),
      createdAtUtc: utcField(body, "created_at_utc", problems),
      startedAtUtc: utcField(body, "started_at_utc", problems),
      completedAtUtc: utcField(body, "completed_at_utc", problems),
      errorMessage: field(body, "error_message"),
      files,
    },
  };
};

/** One entry of data_retrieval_complete `files`; a non-object entry is kept as given. */
function mapFile(file: unknown, label: string, problems: string[]): unknown {
  if (!isObject(file)) return file;
  return {
    monitorSerial: field(file, "monitor_serial"),
    fileType: field(file, "file_type"),
    minEventTimestamp: utcField(file, "min_event_timestamp", problems, `${label}.min_event_timestamp`),
    maxEventTimestamp: utcField(file, "max_event_timestamp", problems, `${label}.max_event_timestamp`),
    fileSize: field(file, "file_size"),
    fileIndex: field(file, "file_index"),
    fileName: field(file, "file_name"),
  };
}

const DAILY_STATISTICS_NORMALIZED: ReadonlySet<string> = new Set([
  "id",
  "studyId",
  "siteId",
  "subjectId",
  "subjectIdentifier",
  "date",
  "firstEpochDateTimeUtc",
  "lastEpochDateTimeUtc",
  "firstEpochDateTimeLocal",
  "lastEpochDateTimeLocal",
]);

/** daily_statistics_complete: ids and times normalized, every other field (the aggregations) as given. */
const mapDailyStatistics: Mapper = (body, problems) => {
  const studyId = idField(body, "studyId", problems);
  const subjectId = idField(body, "subjectId", problems);
  return {
    kind: "daily_statistics.completed",
    studyId,
    subjectId,
    time: null,
    extra: passThrough(body, DAILY_STATISTICS_NORMALIZED),
    fields: {
      dayStatId: idField(body, "id", problems),
      studyId,
      siteId: idField(body, "siteId", problems),
      subjectId,
      subjectIdentifier: field(body, "subjectIdentifier"),
      dateLocal: localField(body, "date", problems),
      firstEpochUtc: utcField(body, "firstEpochDateTimeUtc", problems),
      lastEpochUtc: utcField(body, "lastEpochDateTimeUtc", problems),
      firstEpochLocal: localField(body, "firstEpochDateTimeLocal", problems),
      lastEpochLocal: localField(body, "lastEpochDateTimeLocal", problems),
    },
  };
};

const CP2_NORMALIZED: ReadonlySet<string> = new Set(["studyId", "subjectId", "siteId", "dayStatId", "subjectIdentifier", "date"]);

/** cp2_daily_statistics_complete: ids and the subject-local date normalized, every metric as given. */
const mapCp2DailyStatistics: Mapper = (body, problems) => {
  const studyId = idField(body, "studyId", problems);
  const subjectId = idField(body, "subjectId", problems);
  return {
    kind: "cp2_daily_statistics.completed",
    studyId,
    subjectId,
    time: null,
    extra: passThrough(body, CP2_NORMALIZED),
    fields: {
      dayStatId: idField(body, "dayStatId", problems),
      studyId,
      siteId: idField(body, "siteId", problems),
      subjectId,
      subjectIdentifier: field(body, "subjectIdentifier"),
      dateLocal: localField(body, "date", problems),
    },
  };
};

const MAPPERS: Record<CentrePointEvent, Mapper> = {
  upload: mapUpload,
  raw_processing_complete: mapRawProcessing,
  data_retrieval_complete: mapDataRetrieval,
  daily_statistics_complete: mapDailyStatistics,
  cp2_daily_statistics_complete: mapCp2DailyStatistics,
};

function isObject(value: unknown): value is Body {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isCentrePointEvent(name: string): name is CentrePointEvent {
  return (CENTREPOINT_EVENTS as readonly string[]).includes(name);
}

function describeJson(value: unknown): string {
  if (value === null) return "null";
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}

/** UTF-8 decoders; both drop a leading BOM. */
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const LOSSY_UTF8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: false });

/** A delivery body decoded (UTF-8) and parsed (JSON) once, for handshake detection and normalization alike. */
export interface ParsedBody {
  /** The parsed JSON, or the lossy UTF-8 text when it is not JSON. */
  json: Result<unknown, string>;
  /** Set when the bytes are not valid UTF-8 (decoded lossily). */
  invalidUtf8: boolean;
}

/** Decodes and parses a body; never throws. */
export function parseDeliveryBody(body: Uint8Array): ParsedBody {
  let text: string;
  let invalidUtf8 = false;
  try {
    text = STRICT_UTF8.decode(body);
  } catch {
    invalidUtf8 = true;
    text = LOSSY_UTF8.decode(body);
  }
  try {
    return { json: ok(JSON.parse(text) as unknown), invalidUtf8 };
  } catch {
    return { json: err(text), invalidUtf8 };
  }
}

/** Maps one CentrePoint delivery to its kind, subject, attention reason and CloudEvents envelope; never throws. */
export function normalizeDelivery(input: NormalizeInput): NormalizedEvent {
  const problems: string[] = [];
  const eventName = input.event?.trim().toLowerCase() || null;
  const body = input.parsed ?? parseDeliveryBody(input.body);
  if (body.invalidUtf8) problems.push("body is not valid UTF-8");
  const parsed = body.json;
  if (!parsed.ok) problems.push("body is not valid JSON");
  if (eventName === null) problems.push("missing X-ActiGraph-Event header");
  else if (!isCentrePointEvent(eventName)) problems.push(`unknown event ${show(eventName)}`);

  let mapped: Mapped = { kind: "unknown", studyId: null, subjectId: null, time: null, fields: {} };
  let data: Record<string, unknown>;
  if (!parsed.ok) {
    data = { original: null, bodyText: parsed.error };
  } else {
    if (eventName !== null && isCentrePointEvent(eventName)) {
      if (isObject(parsed.value)) mapped = MAPPERS[eventName](parsed.value, problems);
      else problems.push(`body is ${describeJson(parsed.value)}, not a JSON object`);
    }
    data = { ...mapped.extra, ...mapped.fields, original: parsed.value };
  }

  const subject =
    mapped.studyId !== null && mapped.subjectId !== null
      ? `studies/${encodeURIComponent(mapped.studyId)}/subjects/${encodeURIComponent(mapped.subjectId)}`
      : null;
  const time = mapped.time ?? formatUtc(input.receivedAt);
  if (time === null) problems.push("receivedAt is not a valid time");

  const envelope: CloudEvent = {
    specversion: "1.0",
    id: input.deliveryId,
    source: `/centrepoint/sources/${encodeURIComponent(input.sourceId)}`,
    type: CLOUDEVENT_TYPE_PREFIX + mapped.kind,
    ...(subject !== null && { subject }),
    ...(time !== null && { time }),
    datacontenttype: "application/json",
    ...(eventName !== null && { centrepointevent: eventName }),
    ...(input.provenance === "centrepoint-history" && { provenance: input.provenance }),
    data,
  };
  return {
    kind: mapped.kind,
    subject,
    attention: problems.length > 0 ? problems.join("; ") : null,
    envelope,
    reducedData: { ...mapped.fields },
    searchKeys: searchKeysOf(mapped.fields, subject),
  };
}

/** The identifiers worth an exact-match search, deduplicated; numbers as their decimal text. */
function searchKeysOf(fields: Record<string, unknown>, subject: string | null): string[] {
  const keys = new Set<string>();
  for (const value of [fields.uploadId, fields.trackingId, fields.subjectIdentifier, subject]) {
    const text = typeof value === "number" && Number.isFinite(value) ? String(value) : typeof value === "string" ? value.trim() : "";
    if (text.length > 0 && text.length <= MAX_SEARCH_KEY) keys.add(text);
  }
  return [...keys];
}

/** A serialized envelope, and why `data.original` had to be left out (null when it is whole). */
export interface SerializedEnvelope {
  text: string;
  omitted: string | null;
}

/**
 * Serializes an envelope to at most `maxBytes` of UTF-8. When the whole envelope cannot be
 * serialized (a body nested too deeply for JSON.stringify) or is larger than `maxBytes`, `data`
 * keeps only the normalized fields, without `original` and passed-through fields, and
 * `data.originalOmitted` says why; the raw body itself is kept by the ledger either way. Never throws.
 */
export function serializeEnvelope(event: NormalizedEvent, maxBytes: number): SerializedEnvelope {
  let omitted: string;
  try {
    const text = JSON.stringify(event.envelope);
    // UTF-8 is at most 3 bytes per UTF-16 unit: only measure when the text might be too large.
    if (text.length * 3 <= maxBytes || utf8Length(text) <= maxBytes) return { text, omitted: null };
    omitted = `the envelope would exceed ${maxBytes} bytes`;
  } catch {
    omitted = "the body is nested too deeply to copy";
  }
  try {
    const reduced = JSON.stringify({ ...event.envelope, data: { ...event.reducedData, originalOmitted: omitted } });
    if (utf8Length(reduced) <= maxBytes) return { text: reduced, omitted };
  } catch {
    // A normalized field copied as given is itself too deep: keep the attributes alone.
  }
  return { text: JSON.stringify({ ...event.envelope, data: { originalOmitted: omitted } }), omitted };
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}
