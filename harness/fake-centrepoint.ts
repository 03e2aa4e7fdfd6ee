/**
 * A fake ActiGraph CentrePoint: the OAuth2 token endpoint and the V3 API paths the relay calls
 * (webhook registrations and history, subjects, uploads, raw activity requests, data files).
 *
 * NO imports, on purpose: it loads in the Workers tests (workerd) and in Node scripts under both
 * tsconfigs. Written against web-standard `Request`, `Response`, `URL` and `crypto.randomUUID`.
 *
 * Contracts:
 * - `fetch` routes by path only (the origin is ignored, so any base URL works) and never throws: a
 *   bug in the fake becomes a 500 `text/plain` answer naming it.
 * - Literal path segments match case-insensitively, as ASP.NET routes do; numeric ids are
 *   `^\d+$` (a route constraint), anything else is a 404.
 * - Time is the fake's clock (`options.now`, epoch ms): token expiry and raw-request completion
 *   follow it; nothing here sleeps or starts a timer.
 * - Shapes follow ActiGraph's published V3 examples: history `createdDate`/`lastSentDate` are ISO
 *   without an offset (UTC); the data-retrieval API writes seven fractional digits and `+00:00`
 *   (`2019-07-11T18:36:38.2171641+00:00`) and leaves `startDateTimeUtc`/`completedDateTimeUtc` out
 *   until they happen; the data_retrieval_complete webhook uses `Z` (files: `+00:00`). Data-file ids
 *   are GUID strings; a download URL is valid for DOWNLOAD_URL_TTL_MS (about two minutes); a
 *   subject's `timezone` is an IANA name and `dob` a plain date; an upload file's `fileType` is "RAW".
 * - Rate limit, as published: `rateLimitPerMinute` (default 500) requests per client address in
 *   any sliding 60 s, token requests included; past it a 429 `text/plain` with `Retry-After` in
 *   whole seconds (counted by `rateLimited()`, not counted against the window). The address is
 *   `fetch`'s third argument (default 127.0.0.1: every in-process caller is one address).
 * - The active-request cap answers **400** with CentrePoint's text (ASP.NET's BadRequest for a
 *   business rule; the docs give the text, not the status). Errors are `text/plain`.
 */

/** One API client the token endpoint knows. */
export interface FakeClient {
  clientId: string;
  clientSecret: string;
  /** Scopes this client may request (default: CentrePoint and DataRetrieval). */
  scopes?: string[];
}

/** Options of one fake. Every field has a default. */
export interface FakeCentrePointOptions {
  /** The fake's clock, epoch ms (default Date.now). */
  now?: () => number;
  /** Known API clients (default: one client `fake-client` / `fake-secret`). */
  clients?: FakeClient[];
  /** `expires_in` of issued tokens, seconds (default 3600). */
  tokenExpiresInS?: number;
  /** Studies that exist besides those named by webhooks and subjects (default ["189"]). */
  studyIds?: string[];
  /** Webhook registrations (default: study 189, webhook 74, every event, enabled). */
  webhooks?: FakeWebhookSetup[];
  /** Largest page the server returns, whatever `limit` asks (default 100). */
  maxPageSize?: number;
  /** Order of list endpoints (default "asc"). "shuffled" is a seeded permutation, stable while listing. */
  order?: "asc" | "desc" | "shuffled";
  /** Seed of the "shuffled" order and of generated values (default 1). */
  seed?: number;
  /** Time from creating a raw activity request to its completion, ms (default 60 000). */
  completionDelayMs?: number;
  /** Active (pending/processing) raw requests allowed per client (default 10, as CentrePoint). */
  maxActiveRequests?: number;
  /** Answer a generated subject/upload for unknown ids of a known study (default true); false: 404. */
  generateMissing?: boolean;
  /** Requests per client address in any 60 s before 429s (default 500, CentrePoint's); 0 or Infinity: no limit. */
  rateLimitPerMinute?: number;
}

/** A webhook registration to create or replace. */
export interface FakeWebhookSetup {
  studyId: string;
  webhookId: string;
  /** Target URL (default https://relay.example.invalid/centrepoint/<studyId>). */
  url?: string;
  isDisabled?: boolean;
  /** Subscribed event names (default every event). */
  events?: string[];
}

/** One send attempt to record in a webhook's history. */
export interface FakeDeliveryRecord {
  /** Default: the first configured webhook. */
  studyId?: string;
  webhookId?: string;
  /** `X-ActiGraph-Delivery`; default a fresh GUID. The same id may be recorded several times. */
  deliveryId?: string;
  event: string;
  body: string;
  /** Extra request headers (wire casing), merged over CentrePoint's usual set. */
  headers?: Record<string, string>;
  /** The target's answer (default 200); ignored when `errorMessage` is set. */
  responseCode?: number;
  /** A failed send (no response): CentrePoint's `errorMessage`. */
  errorMessage?: string;
  /** When the delivery was created, epoch ms (default now). */
  createdAt?: number;
  /** When it was last sent, epoch ms (default createdAt). */
  lastSentAt?: number;
}

/** A history item exactly as the V3 API serializes it. */
export interface FakeHistoryItem {
  id: number;
  webhookId: number;
  webhookEventId: number | null;
  webhookEvent: string;
  createdDate: string;
  lastSentDate: string;
  errorMessage?: string;
  request: { headers: string; body: string };
  response?: { responseCode: number; headers: string; body: string };
}

/** One injected failure rule. */
export interface FakeFault {
  status: number;
  /** `Retry-After` header value (seconds or an HTTP-date). */
  retryAfter?: string;
  contentType?: "text/plain" | "application/json";
  body?: string;
  /**
   * Case-insensitive path prefix the rule applies to. Without it the rule matches every API path
   * but not `/connect/token` (name the token path to fail token requests).
   */
  path?: string;
}

/** One request the fake answered. Never holds a token or a secret. */
export interface FakeRequestLogEntry {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** Whether an `Authorization: Bearer` header was sent. */
  bearer: boolean;
  /** Scopes of the presented token (API calls) or requested (token calls), space-separated; null if none. */
  scope: string | null;
  at: number;
}

/** A raw activity request as the fake keeps it. */
export interface FakeRawRequest {
  id: string;
  clientId: string;
  fileFormat: string;
  studyId: number;
  subjectId: number;
  beginTimestampUtc: string;
  endTimestampUtc: string;
  status: "pending" | "processing" | "completed" | "error";
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  errorMessage: string | null;
  dataFileIds: string[];
}

/** A data_retrieval_complete webhook CentrePoint would send: `body` is the exact JSON to sign. */
export interface FakeDataRetrievalWebhook {
  trackingId: string;
  studyId: string;
  body: string;
}

/** The fake: `fetch` plus set-up and inspection methods. */
export interface FakeCentrePoint {
  /** Answers one request; usable directly as an injected `fetch`. `clientAddress` is the caller's address for the rate limit (default 127.0.0.1). */
  fetch(input: Request | string | URL, init?: RequestInit, clientAddress?: string): Promise<Response>;
  /** Creates or replaces a webhook registration (and its study). */
  setWebhook(setup: FakeWebhookSetup): void;
  /** The webhook registrations, in creation order. */
  webhooks(): Required<FakeWebhookSetup>[];
  /** Appends one send attempt to a webhook's history and returns the item. */
  recordDelivery(record: FakeDeliveryRecord): FakeHistoryItem;
  /** History items of a webhook (default: the first configured), in record order. */
  history(studyId?: string, webhookId?: string): FakeHistoryItem[];
  /** Sets a subject's fields over the generated default (ids: numeric strings). */
  setSubject(studyId: string, subjectId: string, fields?: Record<string, unknown>): void;
  /** How many times a subject was looked up through the API. */
  subjectLookups(studyId: string, subjectId: string): number;
  /** Sets an upload's fields over the generated default. */
  setUpload(studyId: string, subjectId: string, uploadId: string, fields?: Record<string, unknown>): void;
  /** Adds a study with no webhooks. */
  addStudy(studyId: string): void;
  /** Fails the next `count` matching requests with the given answer. */
  failNext(count: number, fault: FakeFault): void;
  /** Drops every pending injected failure. */
  clearFaults(): void;
  /** Expires every issued token now (the next API call gets 401). */
  expireTokens(): void;
  /** Changes `expires_in` of tokens issued from now on, seconds. */
  setTokenExpiresIn(seconds: number): void;
  /** Token requests received (successful or not). */
  tokenRequests(): number;
  /** Tokens issued. */
  tokensIssued(): number;
  /** Every request answered, oldest first. */
  requests(): FakeRequestLogEntry[];
  /** How many 429s the rate limit served. */
  rateLimited(): number;
  /** Raw activity requests, oldest first. */
  rawRequests(): FakeRawRequest[];
  /** Moves due requests to completed (clock ≥ created + completionDelayMs) and returns their webhooks. */
  completeDue(): FakeDataRetrievalWebhook[];
  /** Moves an active request to error (default message: CentrePoint's 6-hour cancel); returns its webhook, or null if not active. */
  failRequest(trackingId: string, message?: string): FakeDataRetrievalWebhook | null;
  /** Cancels an active request the way CentrePoint does after 6 hours of execution. */
  cancelRequest(trackingId: string): FakeDataRetrievalWebhook | null;
}

/** CentrePoint's text when a client already has 10 active data-retrieval requests. */
export const FAKE_ACTIVE_LIMIT_MESSAGE = "There are currently 10 active requests. The maximum concurrent active requests limit is 10.";

/** Every event name CentrePoint sends, with the ids of `GET /centrepoint/v3/WebhookEvents` (daily-stats ids are undocumented: ours). */
export const FAKE_WEBHOOK_EVENTS: ReadonlyArray<{ id: number; name: string; description: string }> = [
  { id: 3, name: "upload", description: "All events relating to uploads, such as started, completed and error" },
  { id: 4, name: "data_retrieval_complete", description: "Data retrieval completed" },
  { id: 5, name: "raw_processing_complete", description: "Raw data processing is complete" },
  { id: 6, name: "daily_statistics_complete", description: "Daily statistics are complete" },
  { id: 7, name: "cp2_daily_statistics_complete", description: "CP2 daily statistics are complete" },
];

const SCOPE_CENTREPOINT = "CentrePoint";
const SCOPE_DATA_RETRIEVAL = "DataRetrieval";
const DAY_MS = 86_400_000;
const GT3X_MAX_RANGE_MS = 15 * DAY_MS;
const CANCEL_MESSAGE = "Request cancelled after 6 hours of execution";
const MAX_LIMIT = 100;
const MAX_LOG_ENTRIES = 10_000;
/** CentrePoint's published limit: requests per client address in any sliding minute. */
export const FAKE_RATE_LIMIT_PER_MINUTE = 500;
const RATE_WINDOW_MS = 60_000;
/** How long a download URL is valid (the published example's SAS link: st=19:31:37Z, se=19:33:38Z). */
export const DOWNLOAD_URL_TTL_MS = 121_000;

interface Webhook {
  studyId: string;
  webhookId: string;
  url: string;
  isDisabled: boolean;
  events: string[];
  createdAt: number;
  items: FakeHistoryItem[];
}

interface IssuedToken {
  clientId: string;
  scopes: string[];
  expiresAt: number;
}

interface DataFile {
  id: string;
  trackingId: string;
  fileName: string;
  fileSizeBytes: number;
  createdAt: number;
  expiresAt: number;
}

interface Answer {
  status: number;
  body: string;
  contentType?: string;
  headers?: Record<string, string>;
}

interface Call {
  method: string;
  segments: string[];
  url: URL;
  request: Request;
  token: IssuedToken;
}

/** Creates a fake CentrePoint with fresh state. */
export function createFakeCentrePoint(options: FakeCentrePointOptions = {}): FakeCentrePoint {
  const now = options.now ?? Date.now;
  const seed = options.seed ?? 1;
  const order = options.order ?? "asc";
  const maxPageSize = Math.max(1, Math.floor(options.maxPageSize ?? MAX_LIMIT));
  const completionDelayMs = options.completionDelayMs ?? 60_000;
  const maxActive = options.maxActiveRequests ?? 10;
  const generateMissing = options.generateMissing ?? true;
  let tokenExpiresInS = options.tokenExpiresInS ?? 3600;

  const clients = new Map<string, FakeClient>();
  for (const c of options.clients ?? [{ clientId: "fake-client", clientSecret: "fake-secret" }]) clients.set(c.clientId, c);
  const tokens = new Map<string, IssuedToken>();
  const studies = new Set<string>(options.studyIds ?? ["189"]);
  const webhooks = new Map<string, Webhook>();
  const subjects = new Map<string, Record<string, unknown>>();
  const lookups = new Map<string, number>();
  const uploads = new Map<string, Record<string, unknown>>();
  const rawRequests = new Map<string, FakeRawRequest>();
  const dataFiles = new Map<string, DataFile>();
  const faults: Array<FakeFault & { remaining: number }> = [];
  const log: FakeRequestLogEntry[] = [];
  let tokenRequestCount = 0;
  let historyId = 1000;
  const rateLimit = options.rateLimitPerMinute ?? FAKE_RATE_LIMIT_PER_MINUTE;
  /** Per client address, the times of the requests it made in the window, oldest first. */
  const windows = new Map<string, number[]>();
  let rateLimitedCount = 0;

  const setWebhook = (setup: FakeWebhookSetup): void => {
    const key = `${setup.studyId}/${setup.webhookId}`;
    const previous = webhooks.get(key);
    studies.add(setup.studyId);
    webhooks.set(key, {
      studyId: setup.studyId,
      webhookId: setup.webhookId,
      url: setup.url ?? `https://relay.example.invalid/centrepoint/${setup.studyId}`,
      isDisabled: setup.isDisabled ?? false,
      events: setup.events ?? FAKE_WEBHOOK_EVENTS.map((e) => e.name),
      createdAt: previous?.createdAt ?? now(),
      items: previous?.items ?? [],
    });
  };
  for (const w of options.webhooks ?? [{ studyId: "189", webhookId: "74" }]) setWebhook(w);

  const webhookOf = (studyId?: string, webhookId?: string): Webhook => {
    const found = studyId === undefined && webhookId === undefined ? webhooks.values().next().value : webhooks.get(`${studyId}/${webhookId}`);
    if (!found) throw new Error(`fake CentrePoint: no webhook ${studyId ?? "?"}/${webhookId ?? "?"}`);
    return found;
  };

  const recordDelivery = (record: FakeDeliveryRecord): FakeHistoryItem => {
    const hook = webhookOf(record.studyId, record.webhookId);
    const createdAt = record.createdAt ?? now();
    const deliveryId = record.deliveryId ?? crypto.randomUUID();
    const headers: Record<string, string[]> = {
      "Content-Type": ["application/json; charset=utf-8"],
      "User-Agent": ["ActiGraph-Hookshot/1.0"],
      "X-ActiGraph-Webhook-id": [hook.webhookId],
      "X-ActiGraph-Event": [record.event],
      "X-ActiGraph-Delivery": [deliveryId],
      "X-Client-Cert-Used": ["false"],
      Host: [hostOf(hook.url)],
      "Content-Length": [String(new TextEncoder().encode(record.body).byteLength)],
      Expect: ["100-continue"],
    };
    for (const [name, value] of Object.entries(record.headers ?? {})) {
      for (const existing of Object.keys(headers)) if (existing.toLowerCase() === name.toLowerCase()) delete headers[existing];
      headers[name] = [value];
    }
    const item: FakeHistoryItem = {
      id: historyId++,
      webhookId: Number(hook.webhookId),
      webhookEventId: FAKE_WEBHOOK_EVENTS.find((e) => e.name === record.event)?.id ?? null,
      webhookEvent: record.event,
      createdDate: isoWithoutOffset(createdAt),
      lastSentDate: isoWithoutOffset(record.lastSentAt ?? createdAt),
      request: { headers: JSON.stringify(headers), body: record.body },
    };
    if (record.errorMessage !== undefined) item.errorMessage = record.errorMessage;
    else {
      const responseHeaders = { "Content-Length": ["0"], Date: [new Date(createdAt).toUTCString()], Server: ["fake-target"] };
      item.response = { responseCode: record.responseCode ?? 200, headers: JSON.stringify(responseHeaders), body: "" };
    }
    hook.items.push(item);
    return item;
  };

  const subjectOf = (studyId: string, subjectId: string): Record<string, unknown> | null => {
    const set = subjects.get(`${studyId}/${subjectId}`);
    if (!set && !generateMissing) return null;
    const n = Number(subjectId);
    return {
      id: n,
      studyId: Number(studyId),
      siteId: 12,
      siteIdentifier: "Site A",
      subjectIdentifier: `SUBJ-${subjectId}`,
      dob: "1980-01-01",
      gender: n % 2 === 0 ? "Female" : "Male",
      timezone: "America/New_York",
      wearPosition: "Left Wrist",
      weight: 150,
      weightUnit: "Pounds",
      height: 65,
      heightUnit: "Inches",
      assignmentStatus: "Assigned",
      assignmentId: n + 100_000,
      ...set,
    };
  };

  const uploadOf = (studyId: string, subjectId: string, uploadId: string): Record<string, unknown> | null => {
    const set = uploads.get(`${studyId}/${subjectId}/${uploadId}`);
    if (!set && !generateMissing) return null;
    const n = Number(uploadId);
    return {
      id: n,
      studyId: Number(studyId),
      subjectId: Number(subjectId),
      activityMonitorSerial: "TAS1F39160337",
      assignmentId: Number(subjectId) + 100_000,
      dateUploadedUtc: "2016-06-14T20:50:00Z",
      activityMonitorBatteryVoltage: 4.12,
      activityMonitorFirmware: "1.7.2",
      activityMonitorSampleRateHz: 30,
      uploadFiles: [
        { id: n * 10, fileType: "RAW", totalRecords: 1800, recordsInserted: 1800, beginOfData: "2016-06-14T20:46:00Z", endOfData: "2016-06-14T20:47:00Z" },
      ],
      ...set,
    };
  };

  /** The webhook CentrePoint sends when a request ends (completed or error). */
  const webhookFor = (r: FakeRawRequest): FakeDataRetrievalWebhook => {
    const subject = subjectOf(String(r.studyId), String(r.subjectId));
    const files = r.dataFileIds.map((id, index) => {
      const f = dataFiles.get(id)!;
      const summary = f.fileName.endsWith(".json");
      return {
        monitor_serial: summary ? null : "TAS1F39160337",
        file_type: summary ? "summary" : r.fileFormat,
        min_event_timestamp: isoOffset(Date.parse(r.beginTimestampUtc)),
        max_event_timestamp: isoOffset(Date.parse(r.endTimestampUtc)),
        file_size: f.fileSizeBytes,
        file_index: summary ? 0 : index + 1,
        file_name: f.fileName,
      };
    });
    const body = {
      client_id: r.clientId,
      tracking_id: r.id,
      study_id: r.studyId,
      subject_id: r.subjectId,
      subject_identifier: typeof subject?.subjectIdentifier === "string" ? subject.subjectIdentifier : `SUBJ-${r.subjectId}`,
      created_at_utc: isoZ(r.createdAt),
      started_at_utc: isoZ(r.startedAt ?? r.createdAt),
      completed_at_utc: isoZ(r.completedAt ?? now()),
      request_status: r.status === "completed" ? "Completed" : "Error",
      files,
      error_message: r.errorMessage,
    };
    return { trackingId: r.id, studyId: String(r.studyId), body: JSON.stringify(body) };
  };

  const addDataFile = (r: FakeRawRequest, fileName: string, size: number, at: number): void => {
    const id = guidOf(`${r.id}/${fileName}`);
    dataFiles.set(id, { id, trackingId: r.id, fileName, fileSizeBytes: size, createdAt: at, expiresAt: at + 30 * DAY_MS });
    r.dataFileIds.push(id);
  };

  const complete = (r: FakeRawRequest, at: number): void => {
    r.status = "completed";
    r.startedAt ??= at;
    r.completedAt = at;
    const minS = Math.floor(Date.parse(r.beginTimestampUtc) / 1000);
    const maxS = Math.floor(Date.parse(r.endTimestampUtc) / 1000);
    const tag = hex4(`${r.id}/data`);
    addDataFile(r, `${r.subjectId}_TAS1F39160337_${minS}_${maxS}_${tag}.${r.fileFormat}`, 4570 + (maxS - minS), at);
    addDataFile(r, `${r.subjectId}_${r.id}-${hex4(`${r.id}/summary`)}.json`, 294, at);
  };

  /** Advances a pending request to processing once half its completion delay has passed. */
  const advance = (r: FakeRawRequest, at: number): void => {
    if (r.status === "pending" && at >= r.createdAt + completionDelayMs / 2) {
      r.status = "processing";
      r.startedAt = at;
    }
  };

  const endWithError = (trackingId: string, message: string): FakeDataRetrievalWebhook | null => {
    const r = rawRequests.get(trackingId);
    if (!r || (r.status !== "pending" && r.status !== "processing")) return null;
    const at = now();
    r.status = "error";
    r.startedAt ??= at;
    r.completedAt = at;
    r.errorMessage = message;
    return webhookFor(r);
  };

  /** A stable pseudo-random rank of an id in the "shuffled" order: new items never move old ones. */
  const rank = (id: string): number => hash32(`${seed}:${id}`);

  const ordered = <T>(items: T[], idOf: (item: T) => string): T[] => {
    if (order === "desc") return [...items].reverse();
    if (order === "shuffled") return [...items].sort((a, b) => rank(idOf(a)) - rank(idOf(b)) || (idOf(a) < idOf(b) ? -1 : 1));
    return [...items];
  };

  const paginate = <T>(url: URL, items: T[], idOf: (item: T) => string): Answer => {
    const limitText = url.searchParams.get("limit");
    const offsetText = url.searchParams.get("offset");
    const limit = limitText === null ? MAX_LIMIT : Number(limitText);
    const offset = offsetText === null ? 0 : Number(offsetText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) return text(400, "limit must be an integer between 1 and 100");
    if (!Number.isInteger(offset) || offset < 0) return text(400, "offset must be a non-negative integer");
    const page = ordered(items, idOf).slice(offset, offset + Math.min(limit, maxPageSize));
    return json(200, { items: page, links: {}, totalCount: items.length, limit, offset });
  };

  const registrationOf = (w: Webhook): Record<string, unknown> => ({
    id: Number(w.webhookId),
    studyId: Number(w.studyId),
    url: w.url,
    createdDate: isoWithoutOffset(w.createdAt),
    isDisabled: w.isDisabled,
    webhookEvents: FAKE_WEBHOOK_EVENTS.filter((e) => w.events.includes(e.name)),
  });

  /** As the published example: times not yet reached are left out, not null. */
  const rawRequestView = (r: FakeRawRequest): Record<string, unknown> => ({
    fileFormat: r.fileFormat,
    id: r.id,
    studyId: r.studyId,
    subjectId: r.subjectId,
    status: r.status,
    beginTimestampUtc: r.beginTimestampUtc,
    endTimestampUtc: r.endTimestampUtc,
    createdDateTimeUtc: isoTicks(r.createdAt),
    ...(r.startedAt === null ? {} : { startDateTimeUtc: isoTicks(r.startedAt) }),
    ...(r.completedAt === null ? {} : { completedDateTimeUtc: isoTicks(r.completedAt) }),
    ...(r.errorMessage === null ? {} : { errorMessage: r.errorMessage }),
  });

  const dataFileView = (f: DataFile): Record<string, unknown> => ({
    id: f.id,
    fileName: f.fileName,
    expirationDateUtc: isoTicks(f.expiresAt),
    fileSizeBytes: f.fileSizeBytes,
  });

  const createRawRequest = async (call: Call): Promise<Answer> => {
    let input: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(await bodyText(call.request));
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return text(400, "The request body must be a JSON object.");
      input = parsed as Record<string, unknown>;
    } catch {
      return text(400, "The request body is not valid JSON.");
    }
    const fileFormat = typeof input.fileFormat === "string" ? input.fileFormat.toLowerCase() : "";
    if (!["avro", "csv", "gt3x"].includes(fileFormat)) return text(400, "fileFormat must be one of avro, csv, gt3x.");
    const studyId = numericId(input.studyId);
    const subjectId = numericId(input.subjectId);
    if (studyId === null || subjectId === null) return text(400, "studyId and subjectId are required.");
    if (!studies.has(String(studyId))) return text(404, `Study ${studyId} not found.`);
    const begin = typeof input.beginTimestampUtc === "string" ? Date.parse(input.beginTimestampUtc) : NaN;
    const end = typeof input.endTimestampUtc === "string" ? Date.parse(input.endTimestampUtc) : NaN;
    if (Number.isNaN(begin) || Number.isNaN(end) || end < begin) return text(400, "beginTimestampUtc and endTimestampUtc must be dates, begin before end.");
    if (fileFormat === "gt3x" && end - begin > GT3X_MAX_RANGE_MS) return text(400, "GT3X requests may not span more than 15 days.");
    const at = now();
    let active = 0;
    for (const r of rawRequests.values()) {
      advance(r, at);
      if (r.clientId === call.token.clientId && (r.status === "pending" || r.status === "processing")) active++;
    }
    if (active >= maxActive) return text(400, FAKE_ACTIVE_LIMIT_MESSAGE);
    const r: FakeRawRequest = {
      id: crypto.randomUUID(),
      clientId: call.token.clientId,
      fileFormat,
      studyId,
      subjectId,
      beginTimestampUtc: isoZ(begin),
      endTimestampUtc: isoZ(end),
      status: "pending",
      createdAt: at,
      startedAt: null,
      completedAt: null,
      errorMessage: null,
      dataFileIds: [],
    };
    rawRequests.set(r.id, r);
    return json(200, rawRequestView(r));
  };

  const issueToken = async (request: Request): Promise<{ answer: Answer; scope: string | null }> => {
    tokenRequestCount++;
    const form = new URLSearchParams(await bodyText(request));
    const requested = (form.get("scope") ?? "").split(" ").filter((s) => s.length > 0);
    const scope = requested.length > 0 ? requested.join(" ") : null;
    if (request.method !== "POST") return { answer: text(405, "Method Not Allowed"), scope };
    if (form.get("grant_type") !== "client_credentials") return { answer: json(400, { error: "unsupported_grant_type" }), scope };
    const client = clients.get(form.get("client_id") ?? "");
    if (!client || client.clientSecret !== form.get("client_secret")) return { answer: json(400, { error: "invalid_client" }), scope };
    const allowed = client.scopes ?? [SCOPE_CENTREPOINT, SCOPE_DATA_RETRIEVAL];
    if (requested.some((s) => !allowed.includes(s))) return { answer: json(400, { error: "invalid_scope" }), scope };
    const scopes = requested.length > 0 ? requested : allowed;
    const token = `${crypto.randomUUID()}${crypto.randomUUID()}`.replace(/-/g, "");
    tokens.set(token, { clientId: client.clientId, scopes, expiresAt: now() + tokenExpiresInS * 1000 });
    return { answer: json(200, { access_token: token, expires_in: tokenExpiresInS, token_type: "Bearer", scope: scopes.join(" ") }), scope: scopes.join(" ") };
  };

  /** Routes an authenticated API call. `null`: no such route. */
  const route = async (call: Call): Promise<Answer | null> => {
    const s = call.segments;
    const lower = s.map((x) => x.toLowerCase());
    const at = (i: number, literal: string): boolean => lower[i] === literal;
    const n = s.length;
    const get = call.method === "GET";

    if (at(0, "centrepoint") && at(1, "v3")) {
      if (!call.token.scopes.includes(SCOPE_CENTREPOINT)) return text(403, "Forbidden");
      if (n === 3 && at(2, "webhookevents")) return get ? paginate(call.url, [...FAKE_WEBHOOK_EVENTS], (e) => String(e.id)) : methodNotAllowed();
      if (!at(2, "studies") || n < 4) return null;
      const studyId = s[3]!;
      if (!isNumeric(studyId) || !studies.has(studyId)) return text(404, `Study ${studyId} not found.`);
      if (at(4, "webhooks")) {
        if (!get) return methodNotAllowed();
        if (n === 5) {
          const list = [...webhooks.values()].filter((w) => w.studyId === studyId).map(registrationOf);
          return paginate(call.url, list, (w) => String(w.id));
        }
        const hook = webhooks.get(`${studyId}/${s[5]}`);
        if (!hook) return text(404, `Webhook ${s[5]} not found in study ${studyId}.`);
        if (n === 6) return json(200, registrationOf(hook));
        if (n === 7 && at(6, "history")) return paginate(call.url, hook.items, (item) => String(item.id));
        return null;
      }
      if (at(4, "subjects") && n >= 6) {
        if (!get) return methodNotAllowed();
        const subjectId = s[5]!;
        if (!isNumeric(subjectId)) return null;
        if (n === 6) {
          const key = `${studyId}/${subjectId}`;
          lookups.set(key, (lookups.get(key) ?? 0) + 1);
          const subject = subjectOf(studyId, subjectId);
          return subject ? json(200, subject) : text(404, `Subject ${subjectId} not found.`);
        }
        if (n === 8 && at(6, "uploads") && isNumeric(s[7]!)) {
          const upload = uploadOf(studyId, subjectId, s[7]!);
          return upload ? json(200, upload) : text(404, `Upload ${s[7]} not found.`);
        }
      }
      return null;
    }

    if (at(0, "dataretrieval") && at(1, "v3")) {
      if (!call.token.scopes.includes(SCOPE_DATA_RETRIEVAL)) return text(403, "Forbidden");
      const time = now();
      if (at(2, "rawactivityrequests")) {
        if (n === 3) return call.method === "POST" ? createRawRequest(call) : methodNotAllowed();
        if (!get) return methodNotAllowed();
        const r = rawRequests.get((s[3] ?? "").toLowerCase());
        if (!r) return text(404, `Request ${s[3]} not found.`);
        advance(r, time);
        if (n === 4) return json(200, rawRequestView(r));
        if (n === 5 && at(4, "datafiles"))
          return json(
            200,
            r.dataFileIds.map((id) => dataFileView(dataFiles.get(id)!)),
          );
        return null;
      }
      if (at(2, "datafiles") && (n === 4 || (n === 5 && at(4, "downloadurl")))) {
        if (!get) return methodNotAllowed();
        const f = dataFiles.get(s[3]!.toLowerCase());
        if (!f || time >= f.expiresAt) return text(404, `Data file ${s[3]} not found.`);
        if (n === 4) return json(200, dataFileView(f));
        const sig = crypto.randomUUID().replace(/-/g, "");
        const expiresAt = time + DOWNLOAD_URL_TTL_MS;
        const sas = new URLSearchParams({ sv: "2018-03-28", sr: "b", sig, st: isoZ(time), se: isoZ(expiresAt), sp: "r" });
        return json(200, {
          downloadUrl: `https://blob.fake.invalid/datafiles/${encodeURIComponent(f.fileName)}?${sas}`,
          expirationDateUtc: isoTicks(expiresAt),
        });
      }
    }
    return null;
  };

  /** Counts a request of `address` at `at`; a 429 when its window is full. */
  const limited = (address: string, at: number): Answer | null => {
    if (!(rateLimit > 0 && Number.isFinite(rateLimit))) return null;
    const times = (windows.get(address) ?? []).filter((t) => t > at - RATE_WINDOW_MS);
    windows.set(address, times);
    if (times.length < rateLimit) {
      times.push(at);
      return null;
    }
    rateLimitedCount++;
    const waitS = Math.max(1, Math.ceil((times[0]! + RATE_WINDOW_MS - at) / 1000));
    return { ...text(429, `Rate limit exceeded. Try again in ${waitS} seconds.`), headers: { "retry-after": String(waitS) } };
  };

  const handle = async (request: Request, entry: FakeRequestLogEntry, address: string): Promise<Answer> => {
    const over = limited(address, now());
    if (over) return over;
    const url = new URL(request.url);
    const segments = url.pathname.split("/").filter((x) => x.length > 0);
    const isToken = segments.length === 2 && segments[0]!.toLowerCase() === "connect" && segments[1]!.toLowerCase() === "token";
    const authorization = request.headers.get("authorization") ?? "";
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    entry.bearer = bearer !== null;

    const lowerPath = url.pathname.toLowerCase();
    const fault = faults.find((f) => f.remaining > 0 && (f.path === undefined ? !isToken : lowerPath.startsWith(f.path.toLowerCase())));
    if (fault) {
      fault.remaining--;
      const headers: Record<string, string> = {};
      if (fault.retryAfter !== undefined) headers["retry-after"] = fault.retryAfter;
      const contentType = fault.contentType ?? "text/plain";
      const body = fault.body ?? (contentType === "application/json" ? JSON.stringify({ message: `injected ${fault.status}` }) : `injected ${fault.status}`);
      return { status: fault.status, body, contentType: `${contentType}; charset=utf-8`, headers };
    }

    if (isToken) {
      const { answer, scope } = await issueToken(request);
      entry.scope = scope;
      return answer;
    }
    const token = bearer ? tokens.get(bearer[1]!) : undefined;
    if (token) entry.scope = token.scopes.join(" ");
    if (!token || now() >= token.expiresAt) {
      return { status: 401, body: "", headers: { "www-authenticate": 'Bearer error="invalid_token"' } };
    }
    const answer = await route({ method: request.method.toUpperCase(), segments, url, request, token });
    return answer ?? text(404, "Not Found");
  };

  const fetchFake = async (input: Request | string | URL, init?: RequestInit, clientAddress = "127.0.0.1"): Promise<Response> => {
    const request = input instanceof Request && init === undefined ? input : new Request(input, init);
    const url = new URL(request.url);
    const entry: FakeRequestLogEntry = {
      method: request.method.toUpperCase(),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0,
      bearer: false,
      scope: null,
      at: now(),
    };
    let answer: Answer;
    try {
      answer = await handle(request, entry, clientAddress);
    } catch (e) {
      answer = text(500, `fake CentrePoint bug: ${e instanceof Error ? e.message : String(e)}`);
    }
    entry.status = answer.status;
    if (log.length >= MAX_LOG_ENTRIES) log.shift();
    log.push(entry);
    const headers: Record<string, string> = { ...answer.headers };
    if (answer.contentType) headers["content-type"] = answer.contentType;
    return new Response(answer.body === "" ? null : answer.body, { status: answer.status, headers });
  };

  return {
    fetch: fetchFake,
    setWebhook,
    webhooks: () =>
      [...webhooks.values()].map((w) => ({ studyId: w.studyId, webhookId: w.webhookId, url: w.url, isDisabled: w.isDisabled, events: [...w.events] })),
    recordDelivery,
    history: (studyId, webhookId) => [...webhookOf(studyId, webhookId).items],
    setSubject: (studyId, subjectId, fields = {}) => {
      studies.add(studyId);
      subjects.set(`${studyId}/${subjectId}`, fields);
    },
    subjectLookups: (studyId, subjectId) => lookups.get(`${studyId}/${subjectId}`) ?? 0,
    setUpload: (studyId, subjectId, uploadId, fields = {}) => {
      studies.add(studyId);
      uploads.set(`${studyId}/${subjectId}/${uploadId}`, fields);
    },
    addStudy: (studyId) => void studies.add(studyId),
    failNext: (count, fault) => void faults.push({ ...fault, remaining: Math.max(0, Math.floor(count)) }),
    clearFaults: () => void faults.splice(0, faults.length),
    expireTokens: () => {
      const at = now();
      for (const t of tokens.values()) t.expiresAt = Math.min(t.expiresAt, at);
    },
    setTokenExpiresIn: (seconds) => void (tokenExpiresInS = seconds),
    tokenRequests: () => tokenRequestCount,
    tokensIssued: () => tokens.size,
    requests: () => log.map((e) => ({ ...e, query: { ...e.query } })),
    rateLimited: () => rateLimitedCount,
    rawRequests: () => [...rawRequests.values()].map((r) => ({ ...r, dataFileIds: [...r.dataFileIds] })),
    completeDue: () => {
      const at = now();
      const out: FakeDataRetrievalWebhook[] = [];
      for (const r of rawRequests.values()) {
        if ((r.status === "pending" || r.status === "processing") && at >= r.createdAt + completionDelayMs) {
          complete(r, at);
          out.push(webhookFor(r));
        }
      }
      return out;
    },
    failRequest: (trackingId, message = CANCEL_MESSAGE) => endWithError(trackingId, message),
    cancelRequest: (trackingId) => endWithError(trackingId, CANCEL_MESSAGE),
  };
}

/** The body as UTF-8 text, whatever its content type (workerd warns on `.text()` of a form). */
async function bodyText(request: Request): Promise<string> {
  return new TextDecoder().decode(await request.arrayBuffer());
}

function text(status: number, body: string): Answer {
  return { status, body, contentType: "text/plain; charset=utf-8" };
}

function json(status: number, value: unknown): Answer {
  return { status, body: JSON.stringify(value), contentType: "application/json; charset=utf-8" };
}

function methodNotAllowed(): Answer {
  return text(405, "Method Not Allowed");
}

function isNumeric(id: string): boolean {
  return /^\d{1,15}$/.test(id);
}

/** A JSON number or a numeric string as a number; null otherwise. */
function numericId(value: unknown): number | null {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === "string" && isNumeric(value)) return Number(value);
  return null;
}

/** `2019-06-03T20:41:01`: UTC without an offset, as history dates are written. */
function isoWithoutOffset(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19);
}

/** `2019-07-17T18:18:20Z`. */
function isoZ(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** `2019-07-11T18:36:38.2170000+00:00`: seven fractional digits and an offset, as the data-retrieval API writes dates. */
function isoTicks(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, (_, millis: string) => `.${millis}0000+00:00`);
}

/** A stable GUID-shaped id derived from `text` (data-file ids are GUID strings). */
function guidOf(text: string): string {
  const hex = [0, 1, 2, 3].map((i) => hash32(`${i}:${text}`).toString(16).padStart(8, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** `2019-07-17T16:52:53+00:00`, as data_retrieval_complete file timestamps are written. */
function isoOffset(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "unknown.invalid";
  }
}

/** FNV-1a, 32 bits: a stable rank, not a secret. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function hex4(text: string): string {
  return (hash32(text) & 0xffff).toString(16).padStart(4, "0");
}
