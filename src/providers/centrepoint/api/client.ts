/**
 * The CentrePoint V3 API client: token, retries, rate limits, pagination and validation. Pure core
 * with injected I/O (`fetch`, `now`, `sleep`, `random`); expected failures are `ApiError` values.
 *
 * Contracts:
 * - Every API call sends `Authorization: Bearer`; tokens come from a `TokenCache` (token.ts).
 * - The `budget` hook is asked before every HTTP request, token requests included.
 * - 429: `Retry-After` (seconds or HTTP-date) is honoured by sleeping while the waits of this call
 *   stay within `maxWaitMs` in total; past that the call returns `rate_limited` with the wait.
 * - 5xx and network errors: retried after a full-jitter backoff, at most `maxRetries` times.
 * - 401 from the API: the token is invalidated and the call retried exactly once with a new one;
 *   a second 401 is an `auth` error. 400/401/403 from the token endpoint are `auth` errors.
 * - Any other non-2xx answer is an `http` error at once, with a short reason (≤ 200 chars) taken
 *   from its text/plain or JSON body. Invalid JSON or a schema mismatch is `invalid_response`
 *   naming field paths, never the body.
 * - Neither the token nor the client secret appears in an error, a log line or a returned value;
 *   reasons quoted from CentrePoint are scrubbed of both.
 * - `endpoint` in errors and metrics is the path template (ids replaced), never a query string.
 */
import { z } from "zod";
import { log as defaultLog } from "../../../lib/log";
import { err, ok, type Result } from "../../../lib/result";
import { backoffDelayMs, parseRetryAfter } from "../../../lib/backoff";
import { USER_AGENT } from "../../../version";
import { pageSchema, tokenResponseSchema } from "./schemas";
import { buildTokenRequest, createCredential, isolateTokenCache, TOKEN_PATH, tokenKey, type Credential, type TokenCache } from "./token";

/** API scopes (space-separate several in one string). */
export const SCOPE = { centrePoint: "CentrePoint", dataRetrieval: "DataRetrieval", dataAccess: "DataAccess", analytics: "Analytics" } as const;

/** Why a call failed. `endpoint` is a path template such as `/centrepoint/v3/Studies/{studyId}/Subjects/{subjectId}`. */
export type ApiError =
  | { kind: "http"; status: number; reason: string; endpoint: string }
  | { kind: "network"; reason: string; endpoint: string }
  | { kind: "rate_limited"; retryAfterMs: number; endpoint: string }
  | { kind: "invalid_response"; reason: string; endpoint: string }
  | { kind: "invalid_request"; reason: string; endpoint: string }
  | { kind: "auth"; status: number; reason: string; endpoint: string };

/** A rate budget asked before every HTTP request; an error carries how long to wait. */
export interface ApiBudget {
  acquire(): Promise<Result<void, { retryAfterMs: number }>>;
}

/** Bounds of one call. */
export interface ApiLimits {
  /** Retries after 5xx, network errors and 429 (the first attempt is not a retry). */
  maxRetries: number;
  /** Total time one call may sleep for Retry-After and budget waits, ms. */
  maxWaitMs: number;
  /** Full-jitter backoff of 5xx/network retries: base and cap, ms. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Timeout of one HTTP request, ms. */
  timeoutMs: number;
}

/** Defaults: 3 retries, 30 s of waiting, backoff 0.5 s doubling to 8 s, 30 s per request. */
export const DEFAULT_API_LIMITS: ApiLimits = { maxRetries: 3, maxWaitMs: 30_000, baseDelayMs: 500, maxDelayMs: 8_000, timeoutMs: 30_000 };

/** One HTTP request made (for metrics). `status` null: no answer (network error). */
export interface RequestMetric {
  endpoint: string;
  method: string;
  status: number | null;
  ms: number;
}

/** Everything a client needs; the I/O is injected. */
export interface CentrePointApiOptions {
  /** API base URL, e.g. https://api.actigraphcorp.com */
  apiUrl: string;
  /** Auth base URL, e.g. https://auth.actigraphcorp.com */
  authUrl: string;
  clientId: string;
  /** Secret material: used only in the token request body. */
  clientSecret: string;
  fetch: typeof fetch;
  /** Epoch ms. */
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** [0, 1), for backoff jitter. */
  random: () => number;
  /** Default: always allowed. */
  budget?: ApiBudget;
  /** Default: the isolate's shared cache. */
  tokens?: TokenCache;
  limits?: Partial<ApiLimits>;
  onRequest?: (metric: RequestMetric) => void;
  /** Default: src/lib/log. Never receives secrets. */
  log?: typeof defaultLog;
}

/** A concrete path and its template (for errors and metrics). */
export interface ApiPath {
  path: string;
  endpoint: string;
}

/** One page of a list endpoint. */
export interface Page<T> {
  items: T[];
  totalCount: number;
  /** Offset this page was asked at. */
  offset: number;
  /** Offset of the next page: `offset` + the number of items actually returned. */
  nextOffset: number;
  /** No further page: `nextOffset >= totalCount`, or the server returned nothing (see `note`). */
  done: boolean;
  /** Why listing stopped early, e.g. an empty page before totalCount; null normally. */
  note: string | null;
}

/** Where and how much of a list to read. `limit` is clamped to 1..100 (default 100). */
export interface PageOptions {
  scope: string;
  offset?: number;
  limit?: number;
}

/** The client. */
export interface CentrePointApi {
  /** GETs `path` and validates the JSON answer with `schema`. */
  get<S extends z.ZodType>(path: string | ApiPath, schema: S, options: { scope: string }): Promise<Result<z.output<S>, ApiError>>;
  /** POSTs `body` as JSON and validates the answer with `schema`. */
  post<S extends z.ZodType>(path: string | ApiPath, body: unknown, schema: S, options: { scope: string }): Promise<Result<z.output<S>, ApiError>>;
  /** Fetches ONE page of a list endpoint. */
  page<S extends z.ZodType>(path: string | ApiPath, itemSchema: S, options: PageOptions): Promise<Result<Page<z.output<S>>, ApiError>>;
  /** Pages from `offset` until done, an error (yielded last) or `maxPages` pages (1..10 000). */
  pages<S extends z.ZodType>(
    path: string | ApiPath,
    itemSchema: S,
    options: PageOptions & { maxPages: number },
  ): AsyncGenerator<Result<Page<z.output<S>>, ApiError>, void>;
}

/** Largest `limit` the V3 API accepts. */
export const MAX_PAGE_LIMIT = 100;

/** Longest reason kept from an error body. */
const REASON_LIMIT = 200;

/** Most retries `limits.maxRetries` may ask for. */
const MAX_RETRIES = 10;

/** Most budget refusals one call waits through before giving up. */
const MAX_BUDGET_WAITS = 20;

/** Upper bound of `pages(..., { maxPages })`. */
const MAX_PAGES = 10_000;

/**
 * A path from a template and its parameters, each URI-encoded: `apiPath("/Studies/{studyId}", { studyId: 189 })`.
 * Throws (a bug) when a placeholder has no parameter.
 */
export function apiPath(template: string, params: Record<string, string | number>): ApiPath {
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`apiPath: no value for {${name}} in ${template}`);
    return encodeURIComponent(String(value));
  });
  return { path, endpoint: template };
}

/** The template of a concrete path: query dropped, numeric, GUID-like and long segments → `{id}`. */
export function endpointOf(path: string): string {
  const bare = path.split("?")[0]!.split("#")[0]!;
  return bare
    .split("/")
    .map((s) => (/^\d+$/.test(s) || /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/i.test(s) || s.length > 40 ? "{id}" : s))
    .join("/");
}

/** A short plain-words sentence about an error, for reports and 502 answers (no secrets, no bodies). */
export function describeApiError(e: ApiError): string {
  switch (e.kind) {
    case "http":
      return `CentrePoint answered HTTP ${e.status} to ${e.endpoint}: ${e.reason}`;
    case "network":
      return `CentrePoint could not be reached (${e.endpoint}): ${e.reason}`;
    case "rate_limited":
      return `CentrePoint's rate limit was reached (${e.endpoint}); try again in ${Math.ceil(e.retryAfterMs / 1000)} s`;
    case "invalid_response":
      return `CentrePoint sent an unexpected answer to ${e.endpoint}: ${e.reason}`;
    case "invalid_request":
      return `The request to ${e.endpoint} was not sent: ${e.reason}`;
    case "auth":
      return `CentrePoint refused the API credentials (HTTP ${e.status}): ${e.reason}`;
  }
}

/** CentrePoint's HTTP status behind an error (429 for a rate limit), or null when it did not answer or nothing was sent. */
export function apiErrorStatus(e: ApiError): number | null {
  return e.kind === "http" || e.kind === "auth" ? e.status : e.kind === "rate_limited" ? 429 : null;
}

/** Names the failing field paths of a zod error (at most 5), never the values. */
export function describeSchemaError(error: z.ZodError): string {
  const paths = error.issues.slice(0, 5).map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"} (${i.code})`);
  const more = error.issues.length > 5 ? ` and ${error.issues.length - 5} more` : "";
  return `schema mismatch at ${paths.join(", ")}${more}`;
}

/** A short reason from an error body (text/plain or JSON), whitespace collapsed, ≤ 200 chars, "no reason given" if empty. */
export function reasonOf(body: string): string {
  let reason = body;
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === "string") reason = parsed;
    else if (typeof parsed === "object" && parsed !== null) {
      const record = parsed as Record<string, unknown>;
      const picked = ["error_description", "message", "Message", "detail", "title", "error"]
        .map((k) => record[k])
        .find((v) => typeof v === "string" && v.trim());
      if (typeof picked === "string") reason = picked;
    }
  } catch {
    // not JSON: the text itself
  }
  reason = reason.replace(/\s+/g, " ").trim();
  if (reason === "") return "no reason given";
  return reason.length > REASON_LIMIT ? `${reason.slice(0, REASON_LIMIT - 1)}…` : reason;
}

/** `limit` as an integer in 1..100 (100 when not a number). */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return MAX_PAGE_LIMIT;
  return Math.min(MAX_PAGE_LIMIT, Math.max(1, Math.floor(limit)));
}

/** One answered request. */
interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** One call: where to send it and which token it needs (`scope` null: the token request itself). */
interface Call {
  endpoint: string;
  method: "GET" | "POST";
  url: string;
  body?: string;
  contentType?: string;
  scope: string | null;
}

/** Per-call bookkeeping shared by the token request made on its behalf. */
interface CallState {
  waitedMs: number;
}

/** Creates a client. Nothing is fetched until a method is called. */
export function createCentrePointApi(options: CentrePointApiOptions): CentrePointApi {
  const given: ApiLimits = { ...DEFAULT_API_LIMITS, ...options.limits };
  // Bounded whatever the caller passes: at most MAX_RETRIES retries, no negative waits.
  const limits: ApiLimits = { ...given, maxRetries: Math.min(MAX_RETRIES, Math.max(0, Math.floor(given.maxRetries))), maxWaitMs: Math.max(0, given.maxWaitMs) };
  const tokens = options.tokens ?? isolateTokenCache;
  const log = options.log ?? defaultLog;
  const apiBase = options.apiUrl.replace(/\/+$/, "");
  const backoff = (failures: number) => backoffDelayMs(limits, failures, options.random);

  /** Removes the client secret (and the call's token) from text quoted from CentrePoint. */
  const scrub = (text: string, credential: Credential | null): string => {
    const secret = options.clientSecret;
    const noSecret = secret.length >= 4 ? text.split(secret).join("[redacted]") : text;
    return credential ? credential.redact(noSecret) : noSecret;
  };

  const takeBudget = async (endpoint: string, state: CallState): Promise<Result<void, ApiError>> => {
    if (!options.budget) return ok(undefined);
    for (let i = 0; i <= MAX_BUDGET_WAITS; i++) {
      const granted = await options.budget.acquire();
      if (granted.ok) return granted;
      const wait = Math.max(0, granted.error.retryAfterMs);
      if (i === MAX_BUDGET_WAITS || state.waitedMs + wait > limits.maxWaitMs) return err({ kind: "rate_limited", retryAfterMs: wait, endpoint });
      state.waitedMs += wait;
      await options.sleep(wait);
    }
    return err({ kind: "rate_limited", retryAfterMs: 0, endpoint });
  };

  const issueToken = async (scope: string, state: CallState): Promise<Result<Credential, ApiError>> => {
    const request = buildTokenRequest({ authUrl: options.authUrl, clientId: options.clientId, clientSecret: options.clientSecret, scope });
    const issuedAt = options.now();
    const answer = await send(
      { endpoint: TOKEN_PATH, method: "POST", url: request.url, body: request.body, contentType: request.contentType, scope: null },
      state,
    );
    if (!answer.ok) return answer;
    const decoded = decode(answer.value.text, tokenResponseSchema, TOKEN_PATH);
    if (!decoded.ok) return decoded;
    return ok(createCredential(decoded.value.access_token, issuedAt, decoded.value.expires_in));
  };

  /** The cache key of this client's token for `scope` (token.ts: token URL, API URL, client id, secret fingerprint, scope). */
  const keyOf = (scope: string) =>
    tokenKey({ authUrl: options.authUrl, apiUrl: options.apiUrl, clientId: options.clientId, clientSecret: options.clientSecret, scope });

  const credentialFor = (scope: string, state: CallState): Promise<Result<Credential, ApiError>> =>
    tokens.acquire(keyOf(scope), options.now(), () => issueToken(scope, state));

  const send = async (call: Call, state: CallState): Promise<Result<Answer, ApiError>> => {
    const { endpoint } = call;
    let failures = 0;
    let refreshed = false;
    // Each pass is the first attempt, a retry (≤ maxRetries) or the single 401 refresh.
    for (let pass = 0; pass < limits.maxRetries + 2; pass++) {
      let credential: Credential | null = null;
      const headers: Record<string, string> = { accept: "application/json", "user-agent": USER_AGENT };
      if (call.scope !== null) {
        const c = await credentialFor(call.scope, state);
        if (!c.ok) return c;
        credential = c.value;
        headers.authorization = credential.authorization();
      }
      if (call.contentType) headers["content-type"] = call.contentType;
      const budget = await takeBudget(endpoint, state);
      if (!budget.ok) return budget;

      const started = options.now();
      let answer: Answer;
      // A timer cleared once the answer is read (AbortSignal.timeout's would stay pending for the
      // whole timeout after every request, keeping a Durable Object in memory).
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(new DOMException(`no answer within ${limits.timeoutMs} ms`, "TimeoutError")), limits.timeoutMs);
      try {
        const res = await options.fetch(call.url, { method: call.method, headers, body: call.body, redirect: "manual", signal: abort.signal });
        answer = { status: res.status, headers: res.headers, text: await res.text() };
      } catch (e) {
        options.onRequest?.({ endpoint, method: call.method, status: null, ms: options.now() - started });
        const reason = scrub(e instanceof Error ? `${e.name}: ${e.message}` : String(e), credential).slice(0, REASON_LIMIT);
        failures++;
        if (failures > limits.maxRetries) return err({ kind: "network", reason, endpoint });
        const delay = backoff(failures);
        log("warn", "centrepoint api retry", { endpoint, status: null, retry: failures, delayMs: delay });
        await options.sleep(delay);
        continue;
      } finally {
        clearTimeout(timer);
      }
      options.onRequest?.({ endpoint, method: call.method, status: answer.status, ms: options.now() - started });
      if (answer.status >= 200 && answer.status < 300) return ok(answer);

      const reason = reasonOf(scrub(answer.text, credential));
      if (call.scope === null && (answer.status === 400 || answer.status === 401 || answer.status === 403)) {
        return err({ kind: "auth", status: answer.status, reason, endpoint });
      }
      if (answer.status === 401 && call.scope !== null) {
        tokens.invalidate(keyOf(call.scope), credential ?? undefined);
        if (refreshed) return err({ kind: "auth", status: 401, reason, endpoint });
        refreshed = true;
        continue;
      }
      if (answer.status === 429) {
        failures++;
        const wait = parseRetryAfter(answer.headers.get("retry-after"), options.now()) ?? backoff(failures);
        if (failures > limits.maxRetries || state.waitedMs + wait > limits.maxWaitMs) return err({ kind: "rate_limited", retryAfterMs: wait, endpoint });
        log("warn", "centrepoint api rate limited", { endpoint, retry: failures, delayMs: wait });
        state.waitedMs += wait;
        await options.sleep(wait);
        continue;
      }
      if (answer.status >= 500) {
        failures++;
        if (failures > limits.maxRetries) return err({ kind: "http", status: answer.status, reason, endpoint });
        const delay = backoff(failures);
        log("warn", "centrepoint api retry", { endpoint, status: answer.status, retry: failures, delayMs: delay });
        await options.sleep(delay);
        continue;
      }
      return err({ kind: "http", status: answer.status, reason, endpoint });
    }
    return err({ kind: "network", reason: "retries exhausted", endpoint }); // not reached: every pass returns or counts a failure
  };

  const request = async <S extends z.ZodType>(
    method: "GET" | "POST",
    target: ApiPath,
    query: Record<string, string>,
    body: unknown,
    schema: S,
    scope: string,
  ) => {
    const [pathOnly, existing = ""] = target.path.split("?", 2) as [string, string?];
    const params = new URLSearchParams(existing);
    for (const [k, v] of Object.entries(query)) params.set(k, v);
    const search = params.toString();
    const call: Call = { endpoint: target.endpoint, method, url: `${apiBase}${pathOnly}${search ? `?${search}` : ""}`, scope };
    if (method === "POST") {
      call.body = JSON.stringify(body);
      call.contentType = "application/json";
    }
    const answer = await send(call, { waitedMs: 0 });
    if (!answer.ok) return answer;
    return decode(answer.value.text, schema, target.endpoint);
  };

  const toApiPath = (path: string | ApiPath): ApiPath => (typeof path === "string" ? { path, endpoint: endpointOf(path) } : path);

  const api: CentrePointApi = {
    get: (path, schema, { scope }) => request("GET", toApiPath(path), {}, undefined, schema, scope),
    post: (path, body, schema, { scope }) => request("POST", toApiPath(path), {}, body, schema, scope),
    async page(path, itemSchema, { scope, offset = 0, limit }) {
      const target = toApiPath(path);
      const from = Number.isFinite(offset) ? Math.max(0, Math.floor(offset)) : 0;
      const size = clampLimit(limit);
      const r = await request("GET", target, { limit: String(size), offset: String(from) }, undefined, pageSchema(itemSchema), scope);
      if (!r.ok) return r;
      const items = r.value.items as z.output<typeof itemSchema>[];
      const totalCount = r.value.totalCount;
      const nextOffset = from + items.length; // what the server returned, never what was asked
      let done = nextOffset >= totalCount;
      let note: string | null = null;
      if (!done && items.length === 0) {
        done = true;
        note = `the server returned no items at offset ${from} of ${totalCount}; listing stopped`;
        log("warn", "centrepoint api empty page", { endpoint: target.endpoint, offset: from, totalCount });
      }
      return ok({ items, totalCount, offset: from, nextOffset, done, note });
    },
    async *pages(path, itemSchema, { maxPages, ...rest }) {
      const bound = Number.isFinite(maxPages) ? Math.min(MAX_PAGES, Math.max(1, Math.floor(maxPages))) : 1;
      let offset = rest.offset ?? 0;
      for (let i = 0; i < bound; i++) {
        const r = await api.page(path, itemSchema, { ...rest, offset });
        yield r;
        if (!r.ok || r.value.done) return;
        offset = r.value.nextOffset;
      }
    },
  };
  return api;
}

/** Parses a JSON answer and validates it; `invalid_response` names what is wrong, never the body. */
function decode<S extends z.ZodType>(text: string, schema: S, endpoint: string): Result<z.output<S>, ApiError> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return err({ kind: "invalid_response", reason: text.trim() === "" ? "empty body where JSON was expected" : "invalid JSON", endpoint });
  }
  const checked = schema.safeParse(parsed);
  if (!checked.success) return err({ kind: "invalid_response", reason: describeSchemaError(checked.error), endpoint });
  return ok(checked.data);
}
