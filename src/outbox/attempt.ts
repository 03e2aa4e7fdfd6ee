import type { TargetConfig, TransformConfig } from "../config/schemas";
import { readSecret } from "../config/store";
import { fromBase64, hmacSha256, toBase64, utf8 } from "../lib/crypto";
import { err, ok, type Result } from "../lib/result";
import { HEADER } from "../providers/centrepoint/constants";
import { USER_AGENT } from "../version";
import { parseRetryAfter } from "../lib/backoff";
import { batchBody } from "./batch-body";
import { targetWants } from "../config/match";
import { checkTargetUrl } from "../lib/url-policy";
import { type DispatchPayload, filterWants, secretForms, type Shaped, shapeRequest, type TransformInput, transformInput } from "./transform";
import type { HandoffItem } from "./types";

/**
 * One attempt of a dispatch (or of a batch of them) to its target: resolve the target's secrets,
 * build the request (pure, given the clock), send it with an injected `fetch`. Nothing here
 * touches storage.
 */

/**
 * Standard Webhooks v1 header names of the outbound request. `webhook-id` is the message id (the
 * CentrePoint delivery id: the receiver's idempotency key), unrelated to CentrePoint's
 * `X-ActiGraph-Webhook-Id`, which is a webhook registration id.
 */
export const STANDARD_WEBHOOKS_HEADER = { messageId: "webhook-id", timestamp: "webhook-timestamp", signature: "webhook-signature" } as const;

/** Content type of a CloudEvents batch (batch mode: a JSON array of envelopes). */
export const BATCH_CONTENT_TYPE = "application/cloudevents-batch+json";

/** Content types of the two body formats. */
export const CONTENT_TYPE = { cloudevents: "application/cloudevents+json", raw: "application/json; charset=utf-8" } as const;

/** Bytes of the response body kept in the attempt log. */
export const RESPONSE_BODY_LIMIT = 4096;

/** Response headers kept in the attempt log. */
const KEPT_RESPONSE_HEADERS = ["content-type", "content-length", "retry-after", "location", "date", "server", "x-request-id", "cf-ray"];

/**
 * Why an attempt failed: transport (dns, connect, timeout, tls), a non-2xx answer (http), our
 * configuration (config), or the target's filter or transform expression (transform: never retried).
 */
export type ErrorClass = "dns" | "connect" | "timeout" | "tls" | "http" | "config" | "transform";

/** A target with its secrets resolved, ready to send to. Holds secret material: never log it. */
export interface ResolvedTarget {
  url: string;
  format: TargetConfig["format"];
  timeoutMs: number;
  /** Outbound auth header (name, value), or null. */
  auth: [string, string] | null;
  /** HMAC key of the Standard Webhooks signature (the decoded `whsec_` secret), or null. */
  signingKey: Uint8Array | null;
  /** format raw: the key of a fresh `X-ActiGraph-Signature` (the target's own, never CentrePoint's), or null. */
  centrepointKey: Uint8Array | null;
  /** Every secret value this target's requests carry, in the forms they are sent: redacted from stored responses. */
  secrets: string[];
  /** The target's id (the expressions' `target.id`). */
  id: string;
  /** The target's events and sources (checked again when a dispatch is sent: a replayed not_wanted one meets them as they are then). */
  wants: Pick<TargetConfig, "events" | "sources">;
  /** JSONata filter, or null. */
  filter: string | null;
  /** Request transform, or null. */
  transform: TransformConfig | null;
  /** Values `$secret(name)` gives, by name (only the transform's listed secrets). */
  transformSecrets: Record<string, string>;
  /** How a request goes out when not by the Worker's fetch (an email alert channel: outbox/channel.ts). */
  send?: typeof fetch;
}

/** The request of one attempt. */
export interface OutboundRequest {
  url: string;
  /** POST unless a transform says otherwise. */
  method?: TransformConfig["method"];
  headers: Record<string, string>;
  body: Uint8Array;
}

/** What one attempt came to. `retryAfterMs` is set only for 429/503 with a valid Retry-After. */
export interface AttemptResult {
  ok: boolean;
  status: number | null;
  headers: Record<string, string> | null;
  body: string | null;
  errorClass: ErrorClass | null;
  error: string | null;
  durationMs: number;
  retryAfterMs: number | null;
}

/**
 * Checks the URL policy and reads the named secrets of a target. An error (a `config` failure)
 * names what is wrong, never a secret's value; the target must then not be sent to at all.
 */
export function resolveTarget(config: TargetConfig, env: object, allowHttp: boolean, id = ""): Result<ResolvedTarget, string> {
  const url = checkTargetUrl(config.url, allowHttp);
  if (!url.ok) return err(`target url ${url.error}`);
  let auth: [string, string] | null = null;
  const secrets: string[] = [];
  if (config.auth) {
    const name = config.auth.type === "bearer" ? config.auth.tokenEnv : config.auth.type === "basic" ? config.auth.passwordEnv : config.auth.valueEnv;
    const secret = readSecret(env, name);
    if (secret === undefined) return err(`secret ${name} (outbound ${config.auth.type} auth) is not set`);
    if (config.auth.type === "bearer") auth = ["authorization", `Bearer ${secret}`];
    else if (config.auth.type === "basic") auth = ["authorization", `Basic ${toBase64(utf8(`${config.auth.username}:${secret}`))}`];
    else auth = [config.auth.name.toLowerCase(), secret];
    secrets.push(secret, auth[1]);
  }
  let signingKey: Uint8Array | null = null;
  if (config.signing) {
    const secret = readSecret(env, config.signing.secretEnv);
    if (secret === undefined) return err(`secret ${config.signing.secretEnv} (signing) is not set`);
    signingKey = fromBase64(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret);
    if (!signingKey || signingKey.length === 0) return err(`secret ${config.signing.secretEnv} (signing) is not a whsec_ base64 secret`);
    secrets.push(secret);
  }
  let centrepointKey: Uint8Array | null = null;
  if (config.centrepointSigning) {
    const secret = readSecret(env, config.centrepointSigning.secretEnv);
    if (secret === undefined) return err(`secret ${config.centrepointSigning.secretEnv} (centrepointSigning) is not set`);
    centrepointKey = utf8(secret);
    secrets.push(secret);
  }
  const transformSecrets: Record<string, string> = {};
  for (const name of config.transform?.secrets ?? []) {
    const secret = readSecret(env, name);
    if (secret === undefined) return err(`secret ${name} (transform.secrets) is not set`);
    transformSecrets[name] = secret;
    secrets.push(...secretForms(secret));
  }
  return ok({
    url: config.url,
    format: config.format,
    timeoutMs: config.timeoutMs,
    auth,
    signingKey,
    centrepointKey,
    secrets,
    id,
    wants: { events: config.events, sources: config.sources },
    filter: config.filter ?? null,
    transform: config.transform ?? null,
    transformSecrets,
  });
}

/** Why a dispatch whose kind or source the target's events and sources no longer match is not sent. */
const NOT_WANTED_BY_MATCH = "not wanted by the target's events and sources";

/** What one dispatch comes to: a request to send, not wanted by the filter, or an expression error (never retried). */
export type Prepared = { kind: "send"; request: OutboundRequest } | { kind: "not_wanted"; reason: string } | { kind: "transform"; error: string };

/**
 * Applies the target's filter and transform, then builds the request (signing and auth apply to the
 * transformed body). A target with neither only builds the request. Error messages are redacted.
 */
export async function prepareRequest(item: DispatchPayload & Pick<HandoffItem, "headers">, target: ResolvedTarget, now: number): Promise<Prepared> {
  if (!targetWants(target.wants, item.source, item.kind)) return { kind: "not_wanted", reason: NOT_WANTED_BY_MATCH };
  if (target.filter === null && target.transform === null) return { kind: "send", request: await buildRequest(item, target, now) };
  const input = transformInput(item, target.id);
  if (target.filter !== null) {
    const wants = await filterWants(target.filter, input);
    if (!wants.ok) return { kind: "transform", error: redactSecrets(wants.error, target.secrets) };
    if (!wants.value) return { kind: "not_wanted", reason: "not wanted by the target's filter expression" };
  }
  if (target.transform === null) return { kind: "send", request: await buildRequest(item, target, now) };
  const shaped = await shapeRequest(target.transform, input, (name) => target.transformSecrets[name]);
  if (!shaped.ok) return { kind: "transform", error: redactSecrets(shaped.error, target.secrets) };
  return { kind: "send", request: await buildRequest(item, target, now, shaped.value) };
}

/** What a batch of dispatches comes to: per event, not wanted or a filter error; for the rest (`members`, indexes), one request or a transform error. */
export interface BatchPrepared {
  skipped: { index: number; prepared: Exclude<Prepared, { kind: "send" }> }[];
  members: number[];
  send: Exclude<Prepared, { kind: "not_wanted" }> | null;
}

/**
 * Batch mode: the filter per event, then one request for the rest: the envelopes as a JSON array
 * (`application/cloudevents-batch+json`), or the transform over `{batch: [inputs…]}`. Its
 * `webhook-id` is derived from the members' delivery ids, so a resent batch keeps it.
 */
export async function prepareBatch(
  items: readonly (DispatchPayload & Pick<HandoffItem, "headers">)[],
  target: ResolvedTarget,
  now: number,
): Promise<BatchPrepared> {
  const skipped: BatchPrepared["skipped"] = [];
  const members: number[] = [];
  const inputs: TransformInput[] = [];
  for (const [i, item] of items.entries()) {
    if (!targetWants(target.wants, item.source, item.kind)) {
      skipped.push({ index: i, prepared: { kind: "not_wanted", reason: NOT_WANTED_BY_MATCH } });
      continue;
    }
    const input = target.filter !== null || target.transform !== null ? transformInput(item, target.id) : null;
    if (target.filter !== null && input !== null) {
      const wants = await filterWants(target.filter, input);
      if (!wants.ok) {
        skipped.push({ index: i, prepared: { kind: "transform", error: redactSecrets(wants.error, target.secrets) } });
        continue;
      }
      if (!wants.value) {
        skipped.push({ index: i, prepared: { kind: "not_wanted", reason: "not wanted by the target's filter expression" } });
        continue;
      }
    }
    members.push(i);
    if (input !== null) inputs.push(input);
  }
  if (members.length === 0) return { skipped, members, send: null };
  const chosen = members.map((i) => items[i]!);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(chosen.map((c) => `${c.source}/${c.deliveryId}`).join("\n"))));
  const id = `batch_${[...digest.slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  let shaped: Shaped = { method: "POST", contentType: BATCH_CONTENT_TYPE, headers: {}, body: utf8(batchBody(chosen.map((c) => c.envelope))) };
  if (target.transform !== null) {
    const r = await shapeRequest(target.transform, { batch: inputs }, (name) => target.transformSecrets[name]);
    if (!r.ok) return { skipped, members, send: { kind: "transform", error: redactSecrets(r.error, target.secrets) } };
    shaped = r.value;
  }
  const request = await buildRequest({ deliveryId: id, envelope: "", body: shaped.body, headers: {} }, target, now, shaped);
  return { skipped, members, send: { kind: "send", request } };
}

/** Standard Webhooks v1 signature: `v1,` + base64 HMAC-SHA256 of `${id}.${timestamp}.` + body bytes. */
export async function signWebhook(key: Uint8Array, id: string, timestamp: number, body: Uint8Array): Promise<string> {
  const prefix = utf8(`${id}.${timestamp}.`);
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix, 0);
  message.set(body, prefix.length);
  return `v1,${toBase64(await hmacSha256(key, message))}`;
}

/**
 * Builds the request of one attempt at `now` (epoch ms). `webhook-id` is the delivery id, the same
 * on every retry and replay; `webhook-timestamp` (seconds) and the signature are per attempt.
 */
export async function buildRequest(
  item: Pick<HandoffItem, "deliveryId" | "envelope" | "body" | "headers">,
  target: ResolvedTarget,
  now: number,
  shaped: Shaped | null = null,
): Promise<OutboundRequest> {
  const raw = target.format === "raw";
  const body = shaped ? shaped.body : raw ? item.body : utf8(item.envelope);
  const timestamp = Math.floor(now / 1000);
  // A transform's headers first: the relay's own (auth, content type, signature) are set after, so they win.
  const headers: Record<string, string> = { ...shaped?.headers };
  // The ledger picked the forwardable x-actigraph-* headers; ours are set after, so they win. A
  // CentrePoint signature is never passed on (rows queued before it was left out may still hold one).
  if (raw && !shaped) for (const [k, v] of Object.entries(item.headers)) if (k.toLowerCase() !== CENTREPOINT_SIGNATURE) headers[k.toLowerCase()] = v;
  if (raw && target.centrepointKey) headers[CENTREPOINT_SIGNATURE] = toBase64(await hmacSha256(target.centrepointKey, body));
  if (target.auth) headers[target.auth[0]] = target.auth[1];
  headers["content-type"] = shaped ? shaped.contentType : raw ? CONTENT_TYPE.raw : CONTENT_TYPE.cloudevents;
  headers["user-agent"] = USER_AGENT;
  headers[STANDARD_WEBHOOKS_HEADER.messageId] = item.deliveryId;
  headers[STANDARD_WEBHOOKS_HEADER.timestamp] = String(timestamp);
  if (target.signingKey) headers[STANDARD_WEBHOOKS_HEADER.signature] = await signWebhook(target.signingKey, item.deliveryId, timestamp, body);
  return shaped ? { url: target.url, method: shaped.method, headers, body } : { url: target.url, headers, body };
}

/** CentrePoint's body-signature header, as a raw target with `centrepointSigning` receives it. */
const CENTREPOINT_SIGNATURE = HEADER.signature;

/** Authorization-like values (`Bearer …`, `Basic …`) anywhere in a text. */
const CREDENTIAL_VALUE = /\b(Bearer|Basic|Token|ApiKey)(\s+)[A-Za-z0-9._~+/=-]{6,}/gi;

/** Replaces every occurrence of the target's secret values, and anything that looks like an Authorization value, with `[redacted]`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  return out.replace(CREDENTIAL_VALUE, "$1$2[redacted]");
}

/** An attempt's result as it may be stored: the response body and headers without the target's own secrets (an echoing target shows them). */
export function redactResult(result: AttemptResult, secrets: readonly string[]): AttemptResult {
  return {
    ...result,
    body: result.body === null ? null : redactSecrets(result.body, secrets),
    headers: result.headers === null ? null : Object.fromEntries(Object.entries(result.headers).map(([k, v]) => [k, redactSecrets(v, secrets)])),
    error: result.error === null ? null : redactSecrets(result.error, secrets),
  };
}

/** Classifies a thrown fetch error. Workers errors carry no codes, so this reads names and messages. */
export function classifyError(e: unknown): Exclude<ErrorClass, "http" | "config" | "transform"> {
  const name = e instanceof Error ? e.name : "";
  const message = e instanceof Error ? e.message : String(e);
  if (name === "TimeoutError" || name === "AbortError" || /timed? ?out/i.test(message)) return "timeout";
  if (/dns|resolve|not known|ENOTFOUND|EAI_AGAIN/i.test(message)) return "dns";
  if (/tls|ssl|certificate|handshake/i.test(message)) return "tls";
  return "connect";
}

/** Sends one request; never throws. Redirects are not followed (a 3xx is a failure). */
export async function sendRequest(req: OutboundRequest, deps: { fetch: typeof fetch; now: () => number; timeoutMs: number }): Promise<AttemptResult> {
  const started = deps.now();
  try {
    const res = await deps.fetch(req.url, {
      method: req.method ?? "POST",
      headers: req.headers,
      body: req.body,
      redirect: "manual",
      signal: AbortSignal.timeout(deps.timeoutMs),
    });
    const body = await readPrefix(res, RESPONSE_BODY_LIMIT);
    const headers: Record<string, string> = {};
    for (const name of KEPT_RESPONSE_HEADERS) {
      const value = res.headers.get(name);
      if (value !== null) headers[name] = value.slice(0, 512);
    }
    const ok = res.status >= 200 && res.status < 300;
    const throttled = res.status === 429 || res.status === 503;
    return {
      ok,
      status: res.status,
      headers,
      body,
      errorClass: ok ? null : "http",
      error: ok ? null : `HTTP ${res.status}`,
      durationMs: deps.now() - started,
      retryAfterMs: throttled ? parseRetryAfter(res.headers.get("retry-after"), deps.now()) : null,
    };
  } catch (e) {
    const errorClass = classifyError(e);
    const message = errorClass === "timeout" ? `no response within ${deps.timeoutMs} ms` : e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      status: null,
      headers: null,
      body: null,
      errorClass,
      error: message.slice(0, 500),
      durationMs: deps.now() - started,
      retryAfterMs: null,
    };
  }
}

/** The first `limit` bytes of a response body as text (lossy UTF-8); the rest is cancelled. */
async function readPrefix(res: Response, limit: number): Promise<string> {
  if (!res.body) return "";
  // Most answers are small and say so: read them whole, without a chunk loop (hot path of every attempt).
  const length = res.headers.get("content-length");
  if (length !== null && /^\d{1,9}$/.test(length) && Number(length) <= limit) return new TextDecoder().decode(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let i = 0; size < limit && i < 10_000; i++) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  if (size >= limit) await reader.cancel().catch(() => undefined);
  const out = new Uint8Array(Math.min(size, limit));
  let offset = 0;
  for (const c of chunks) {
    const part = c.subarray(0, out.length - offset);
    out.set(part, offset);
    offset += part.length;
  }
  return new TextDecoder().decode(out);
}
