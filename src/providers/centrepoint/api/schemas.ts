/**
 * Shapes of the CentrePoint V3 API answers the relay reads (protocol spec, sections 5 and 6), and
 * pure helpers over webhook history items. Validation happens here, at the edge; types are
 * inferred from the schemas.
 *
 * Conventions:
 * - Ids arrive as JSON numbers or strings; every id comes out as a string (the relay's convention).
 * - Objects are parsed with zod's default "strip": fields not named here are dropped, so nothing
 *   the relay did not ask for travels further (see `subjectSchema`).
 * - History dates stay strings as sent; without an offset they are read as UTC (`createdAtMs`).
 *   The `*Utc` dates of subjects, uploads and data retrieval come out as UTC with Z
 *   (`utcInstant`): CentrePoint writes `2019-07-11T18:36:38.2171641+00:00` (seven fractional
 *   digits), the relay `2019-07-11T18:36:38.217Z`.
 * - Tolerant where the docs are vague (optional descriptions, null vs absent), strict where the
 *   relay acts on the value (ids, urls, counts).
 */
import { z } from "zod";
import { err, ok, type Result } from "../../../lib/result";
import { HEADER } from "../constants";
import { parseTimestamp } from "../normalize";

/** An id sent as a JSON number or a non-empty string, normalized to a string. */
export const apiIdSchema = z.union([z.number().int().nonnegative(), z.string().trim().min(1).max(128)]).transform((v) => String(v));

/** A string field CentrePoint may send as null or leave out; comes out as string | null. */
const optionalString = z
  .string()
  .nullish()
  .transform((v) => v ?? null);

/** A number field CentrePoint may send as null or leave out; comes out as number | null. */
const optionalNumber = z
  .number()
  .nullish()
  .transform((v) => v ?? null);

/** A date-time string that must parse as ISO-8601; without an offset it is read as UTC. */
const utcDate = z.string().refine((text) => parseTimestamp(text).ok, "not an ISO-8601 date-time");

/**
 * A `*Utc` date CentrePoint may send as null or leave out, as `YYYY-MM-DDTHH:mm:ss.sssZ` (any
 * offset converted, no offset read as UTC, fractions past milliseconds dropped); text that is no
 * date is kept as sent (where the relay uses a date, e.g. a file's expiry, it then counts as
 * absent); comes out as string | null.
 */
const utcInstant = optionalString.transform((text) => {
  if (text === null) return null;
  const parsed = parseTimestamp(text.trim());
  return parsed.ok ? new Date(parsed.value.epochMs).toISOString() : text;
});

/** Epoch ms of a CentrePoint date-time; text without an offset is read as UTC. Null when unparseable. */
export function parseUtcDate(text: string | null | undefined): number | null {
  if (!text) return null;
  const parsed = parseTimestamp(text);
  return parsed.ok ? parsed.value.epochMs : null;
}

/** `POST {authUrl}/connect/token` answer (OAuth2 client credentials). */
export const tokenResponseSchema = z.object({
  access_token: z.string().min(1).max(16_384),
  /** Seconds; some servers send it as a numeric string. */
  expires_in: z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]).pipe(z.number().int().positive()),
  token_type: z.string().default("Bearer"),
});
export type TokenResponse = z.infer<typeof tokenResponseSchema>;

/** The paginated envelope of every V3 list endpoint; `links` is often `{}` and is not read. */
export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    totalCount: z.number().int().nonnegative(),
    limit: z.number().int().nullish(),
    offset: z.number().int().nullish(),
  });
}

/** One entry of `webhookEvents[]` (also `GET /centrepoint/v3/WebhookEvents`). */
export const webhookEventSchema = z.object({
  id: apiIdSchema,
  name: z.string(),
  description: optionalString,
});
export type WebhookEvent = z.infer<typeof webhookEventSchema>;

/** `GET /centrepoint/v3/Studies/{studyId}/Webhooks/{webhookId}`. */
export const webhookRegistrationSchema = z.object({
  id: apiIdSchema,
  studyId: apiIdSchema,
  url: z.string(),
  createdDate: optionalString,
  isDisabled: z.boolean(),
  webhookEvents: z
    .array(webhookEventSchema)
    .nullish()
    .transform((v) => v ?? []),
});
export type WebhookRegistration = z.infer<typeof webhookRegistrationSchema>;

/**
 * One item of `GET .../Webhooks/{webhookId}/history`: one send attempt of one delivery (a
 * delivery retried or resent appears once per attempt, with the same delivery id).
 * `request.headers` is a JSON-encoded string (see `parseHistoryHeaders`); `response` is absent or
 * null when the send failed, and `errorMessage` then says why.
 */
export const historyItemSchema = z
  .object({
    id: apiIdSchema,
    webhookId: apiIdSchema,
    webhookEventId: apiIdSchema.nullish().transform((v) => v ?? null),
    webhookEvent: optionalString,
    createdDate: utcDate,
    lastSentDate: utcDate.nullish().transform((v) => v ?? null),
    errorMessage: optionalString,
    request: z.object({ headers: z.string(), body: z.string() }),
    response: z
      .object({ responseCode: z.number().int(), headers: optionalString, body: optionalString })
      .nullish()
      .transform((v) => v ?? null),
  })
  .transform((item) => ({ ...item, createdAtMs: parseUtcDate(item.createdDate)!, lastSentAtMs: parseUtcDate(item.lastSentDate) }));
export type HistoryItem = z.infer<typeof historyItemSchema>;

/**
 * `GET /centrepoint/v3/Studies/{studyId}/Subjects/{subjectId}`.
 *
 * Data minimisation: the API also sends `dob`, `gender`, `weight`, `weightUnit`, `height`,
 * `heightUnit` (and wear position, assignment). They are health and identity data of a study
 * participant that no relay feature needs; the default strip drops them here, at the edge, so they
 * can never be stored, logged or forwarded. Do not add them without a documented purpose.
 */
export const subjectSchema = z.object({
  id: apiIdSchema,
  studyId: apiIdSchema,
  siteId: apiIdSchema.nullish().transform((v) => v ?? null),
  siteIdentifier: optionalString,
  subjectIdentifier: z.string(),
  timezone: optionalString,
});
export type Subject = z.infer<typeof subjectSchema>;

/** One entry of an upload's `uploadFiles[]`. */
export const uploadFileSchema = z.object({
  id: apiIdSchema,
  fileType: optionalString,
  totalRecords: optionalNumber,
  recordsInserted: optionalNumber,
  beginOfData: utcInstant,
  endOfData: utcInstant,
});

/** `GET /centrepoint/v3/Studies/{studyId}/Subjects/{subjectId}/Uploads/{uploadId}`. */
export const uploadSchema = z.object({
  id: apiIdSchema,
  studyId: apiIdSchema,
  subjectId: apiIdSchema,
  activityMonitorSerial: optionalString,
  activityMonitorFirmware: optionalString,
  activityMonitorBatteryVoltage: optionalNumber,
  activityMonitorSampleRateHz: optionalNumber,
  dateUploadedUtc: utcInstant,
  uploadFiles: z
    .array(uploadFileSchema)
    .nullish()
    .transform((v) => v ?? []),
});
export type Upload = z.infer<typeof uploadSchema>;

/** Raw data file formats CentrePoint produces. */
export const RAW_FILE_FORMATS = ["avro", "csv", "gt3x"] as const;

/** Longest range of a gt3x raw request CentrePoint accepts, ms (15 days). */
export const GT3X_MAX_RANGE_MS = 15 * 86_400_000;

const numericId = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .regex(/^\d{1,15}$/)
    .transform(Number),
]);

/**
 * `POST /dataretrieval/v3/RawActivityRequests` body. Ids go out as JSON numbers (the API's type);
 * timestamps must carry an offset; a gt3x range may not exceed 15 days (CentrePoint's rule, checked
 * before spending a request on it).
 */
export const rawActivityRequestBodySchema = z
  .object({
    fileFormat: z.enum(RAW_FILE_FORMATS),
    studyId: numericId,
    subjectId: numericId,
    beginTimestampUtc: z.string(),
    endTimestampUtc: z.string(),
  })
  .superRefine((body, ctx) => {
    const begin = parseTimestamp(body.beginTimestampUtc);
    const end = parseTimestamp(body.endTimestampUtc);
    if (!begin.ok || !begin.value.hasOffset) ctx.addIssue({ code: "custom", path: ["beginTimestampUtc"], message: "must be ISO-8601 with Z or an offset" });
    if (!end.ok || !end.value.hasOffset) ctx.addIssue({ code: "custom", path: ["endTimestampUtc"], message: "must be ISO-8601 with Z or an offset" });
    if (!begin.ok || !end.ok) return;
    if (end.value.epochMs < begin.value.epochMs) ctx.addIssue({ code: "custom", path: ["endTimestampUtc"], message: "must not be before beginTimestampUtc" });
    if (body.fileFormat === "gt3x" && end.value.epochMs - begin.value.epochMs > GT3X_MAX_RANGE_MS) {
      ctx.addIssue({ code: "custom", path: ["endTimestampUtc"], message: "a gt3x request may cover at most 15 days" });
    }
  });
export type RawActivityRequestBody = z.input<typeof rawActivityRequestBodySchema>;

/** Request statuses the docs name; compare with `status` after lower-casing (the schema does). */
export const RAW_REQUEST_STATUSES = ["pending", "processing", "completed", "error"] as const;

/**
 * `POST /dataretrieval/v3/RawActivityRequests` answer and `GET .../RawActivityRequests/{trackingId}`.
 * `status` is trimmed and lower-cased; an undocumented value is kept (see `isActiveRequestStatus`).
 */
export const rawActivityRequestSchema = z.object({
  id: z.string().trim().min(1).max(128),
  status: z.string().transform((s) => s.trim().toLowerCase()),
  createdDateTimeUtc: utcInstant,
  /** Left out until processing starts (pending), as `completedDateTimeUtc` until it ends: null then. */
  startDateTimeUtc: utcInstant,
  completedDateTimeUtc: utcInstant,
  /** Why a request ended in error (e.g. CentrePoint's 6-hour cancel); not in the docs' example, sent by the API. */
  errorMessage: optionalString,
});
export type RawActivityRequest = z.infer<typeof rawActivityRequestSchema>;

/** Whether a raw request still counts against CentrePoint's 10 active requests (pending or processing). */
export function isActiveRequestStatus(status: string): boolean {
  const s = status.trim().toLowerCase();
  return s === "pending" || s === "processing";
}

/** One entry of `GET .../RawActivityRequests/{trackingId}/datafiles`; `id` is a GUID string (numbers accepted too). */
export const dataFileSchema = z.object({
  id: apiIdSchema,
  fileName: z.string(),
  expirationDateUtc: utcInstant,
  fileSizeBytes: optionalNumber,
});
export type DataFile = z.infer<typeof dataFileSchema>;

/** The datafiles list: documented as a bare array; a paginated envelope is accepted too. */
export const dataFilesSchema = z.union([z.array(dataFileSchema), pageSchema(dataFileSchema).transform((page) => page.items)]);

/** `GET /dataretrieval/v3/DataFiles/{dataFileId}/downloadurl`: a short-lived signed URL; never log it. */
export const downloadUrlSchema = z.object({
  downloadUrl: z.url({ protocol: /^https?$/ }),
  /** About two minutes after the call. */
  expirationDateUtc: utcInstant,
});
export type DownloadUrl = z.infer<typeof downloadUrlSchema>;

/** Parsed `request.headers` of a history item: lower-cased name → every value, in order. */
export type HistoryHeaderValues = Record<string, string[]>;

/**
 * Parses a history item's `request.headers` (or `response.headers`): a JSON-encoded object mapping
 * header names in any casing to arrays of strings. Names are lower-cased and values of names that
 * differ only by case are concatenated. A bare string or number value counts as one value. Error:
 * not JSON, or not an object (values of other types are skipped).
 */
export function parseHistoryHeaderValues(text: string | null | undefined): Result<HistoryHeaderValues, string> {
  if (text === null || text === undefined || text.trim() === "") return ok({});
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return err("headers are not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return err("headers are not a JSON object");
  const out = new Map<string, string[]>();
  for (const [name, raw] of Object.entries(parsed)) {
    const values = (Array.isArray(raw) ? raw : [raw]).filter((v) => typeof v === "string" || typeof v === "number").map(String);
    if (values.length === 0) continue;
    const key = name.trim().toLowerCase();
    out.set(key, [...(out.get(key) ?? []), ...values]);
  }
  return ok(Object.fromEntries(out));
}

/** Like `parseHistoryHeaderValues`, keeping the first value of each header. */
export function parseHistoryHeaders(text: string | null | undefined): Result<Record<string, string>, string> {
  const all = parseHistoryHeaderValues(text);
  if (!all.ok) return all;
  return ok(Object.fromEntries(Object.entries(all.value).map(([k, v]) => [k, v[0]!])));
}

/** The longest delivery id accepted from history (CentrePoint's are 36 characters). */
const MAX_DELIVERY_ID_LENGTH = 128;

/** The `X-ActiGraph-Delivery` a history item was sent with (trimmed); error when absent or unreadable. */
export function deliveryIdOf(item: Pick<HistoryItem, "request">): Result<string, string> {
  const headers = parseHistoryHeaders(item.request.headers);
  if (!headers.ok) return headers;
  const id = headers.value[HEADER.delivery]?.trim() ?? "";
  if (id === "") return err("no X-ActiGraph-Delivery header");
  if (id.length > MAX_DELIVERY_ID_LENGTH) return err("X-ActiGraph-Delivery is too long");
  return ok(id);
}

/**
 * The wire event name of a history item, trimmed and lower-cased: the `X-ActiGraph-Event` header
 * it was sent with, else the item's `webhookEvent`. The header wins because it is what a receiver
 * saw (the docs' history example pairs header `upload` with `webhookEvent` raw_processing_complete).
 * Null when neither is present.
 */
export function eventOf(item: Pick<HistoryItem, "request" | "webhookEvent">): string | null {
  const headers = parseHistoryHeaders(item.request.headers);
  const fromHeader = headers.ok ? headers.value[HEADER.event]?.trim().toLowerCase() : undefined;
  if (fromHeader) return fromHeader;
  const fromField = item.webhookEvent?.trim().toLowerCase();
  return fromField ? fromField : null;
}

/** Whether a history item is a successful send: a 2xx answer and no `errorMessage`. */
export function wasDelivered(item: Pick<HistoryItem, "response" | "errorMessage">): boolean {
  const code = item.response?.responseCode;
  return !item.errorMessage && code !== undefined && code >= 200 && code < 300;
}
