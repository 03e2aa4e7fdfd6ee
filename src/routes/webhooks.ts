import { Hono } from "hono";
import { idSchema } from "../config/schemas";
import type { TargetConfig } from "../config/schemas";
import { type Listed, listConfigs, loadConfig } from "../config/store";
import type { AppEnv } from "../env";
import { readBodyLimited } from "../lib/body";
import { sha256Hex } from "../lib/crypto";
import { errorResponse } from "../lib/errors";
import { storedHeaders } from "../lib/headers";
import { ipAllowed } from "../lib/ip";
import { log } from "../lib/log";
import { targetWants } from "../outbox/match";
import { authenticate } from "../providers/centrepoint/auth";
import { HEADER } from "../providers/centrepoint/constants";
import { detectHandshake } from "../providers/centrepoint/handshake";
import { normalizeDelivery, serializeEnvelope } from "../providers/centrepoint/normalize";

/** Default body limit when MAX_BODY_BYTES is unset or invalid: 256 KiB (CentrePoint sends a few KiB). */
export const DEFAULT_MAX_BODY_BYTES = 262_144;
/** Largest body limit MAX_BODY_BYTES may set: a stored row (body, headers, envelope) must stay under SQLite's 2 MB. */
export const MAX_BODY_BYTES_CEILING = 1_048_576;
/** Bytes a ledger or outbox row may take in all (SQLite's row limit is 2,000,000); the envelope gets what body and headers leave. */
export const ROW_BUDGET_BYTES = 1_900_000;
/** Longest delivery id taken from `X-ActiGraph-Delivery` (CentrePoint's are 36 characters). */
const MAX_DELIVERY_ID_LENGTH = 128;
/** Content types that cannot carry a CentrePoint delivery. */
const REFUSED_MEDIA_TYPES = /^(multipart\/|application\/x-www-form-urlencoded)/i;
/** Headers whose values are never stored. */

/** `POST /webhooks/:source`: CentrePoint ingress. */
export const webhooks = new Hono<AppEnv>();

webhooks.post("/:source", async (c) => {
  const started = Date.now();
  const sourceId = c.req.param("source");
  const ip = c.req.header("cf-connecting-ip") ?? null;
  const reject = (status: 400 | 401 | 403 | 404 | 413 | 415 | 503, code: Parameters<typeof errorResponse>[2], message: string, reason: string) => {
    log("info", "webhook rejected", { requestId: c.var.requestId, source: sourceId, status, reason, ip, ms: Date.now() - started });
    // Rejections from an allowed address are counted in the source's ledger, off the response
    // path. Earlier ones (unknown source, address not allowed) are only logged: anyone on the
    // internet can cause them, and they must not cost a durable write.
    if (status !== 403 && status !== 404 && status !== 503) {
      c.executionCtx.waitUntil(
        c.env.LEDGER.get(c.env.LEDGER.idFromName(sourceId))
          .countRejection(reason)
          .catch(() => undefined),
      );
    }
    return errorResponse(c, status, code, message);
  };

  if (!idSchema.safeParse(sourceId).success) return reject(404, "not_found", "Unknown source.", "bad_source_id");
  const loaded = await loadConfig(c.env.CONFIG, "source", sourceId);
  if (loaded.state === "missing") return reject(404, "not_found", "Unknown source.", "unknown_source");
  if (loaded.state === "invalid") {
    log("error", "source document is invalid", { source: sourceId, errors: loaded.errors });
    return reject(503, "source_misconfigured", "This source's configuration is invalid; the operator has been told.", "invalid_source_document");
  }
  const source = loaded.config;
  if (!source.enabled) return reject(404, "not_found", "Unknown source.", "source_disabled");
  if (!ipAllowed(ip ?? undefined, source.allowedIps)) return reject(403, "forbidden", "Source address not allowed.", "ip_not_allowed");

  const contentType = c.req.header("content-type") ?? "";
  if (REFUSED_MEDIA_TYPES.test(contentType)) return reject(415, "unsupported_media_type", "CentrePoint deliveries are JSON.", "media_type");

  const limit = bodyLimit(c.env.MAX_BODY_BYTES);
  const body = await readBodyLimited(c.req.raw, limit);
  if (!body.ok) return reject(413, "payload_too_large", `Body larger than ${limit} bytes.`, "too_large");
  const raw = body.value;
  const parsed = parseJson(raw);

  const event = c.req.header(HEADER.event);
  const auth = await authenticate(source.auth, c.env, { authorization: c.req.header("authorization"), signature: c.req.header(HEADER.signature) }, raw);
  if (!auth.ok && auth.error.reason === "secret_unset") {
    log("error", "source names a secret that is not set; failing closed", { source: sourceId, secret: auth.error.secretName });
  }

  const ledger = c.env.LEDGER.get(c.env.LEDGER.idFromName(sourceId));
  const handshake = detectHandshake(event, c.req.header(HEADER.hookSecret), parsed);
  if (handshake) {
    // Handshake policy (docs/security.md): credentials that are present must be valid; absent
    // credentials are tolerated because CentrePoint does not document sending them. A
    // handshake never records a delivery and never reaches a target.
    const credentialsAbsent = !auth.ok && auth.error.reason === "missing";
    const authenticated = auth.ok && source.auth.type !== "none";
    const audit = {
      receivedAt: started,
      sourceIp: ip,
      webhookId: c.req.header(HEADER.webhookId) ?? (handshake.ok ? handshake.value.webhookId : null),
      deliveryId: c.req.header(HEADER.delivery) ?? null,
      authenticated,
    };
    if (!auth.ok && !credentialsAbsent) {
      await ledger.recordHandshake({ ...audit, outcome: `refused: ${auth.error.reason}` });
      return reject(401, "unauthorized", "Invalid credentials.", `handshake_auth_${auth.error.reason}`);
    }
    if (!handshake.ok) {
      await ledger.recordHandshake({ ...audit, outcome: `refused: ${handshake.error}` });
      return reject(400, "bad_request", `Validation refused: ${handshake.error}.`, "bad_validation_code");
    }
    await ledger.recordHandshake({ ...audit, outcome: "echoed" });
    log("info", "handshake answered", { requestId: c.var.requestId, source: sourceId, authenticated, ms: Date.now() - started });
    c.header(HEADER.hookSecret, handshake.value.code);
    return c.json({ status: "validated" });
  }
  if (!auth.ok) return reject(401, "unauthorized", "Invalid credentials.", `auth_${auth.error.reason}`);

  const headerId = c.req.header(HEADER.delivery)?.trim();
  const idFromHeader = headerId !== undefined && headerId.length > 0 && headerId.length <= MAX_DELIVERY_ID_LENGTH && /^[\x21-\x7e]+$/.test(headerId);
  const deliveryId = idFromHeader ? headerId : derivedDeliveryId(event, raw);
  const normalized = normalizeDelivery({ sourceId, deliveryId, event: event ?? null, receivedAt: started, body: raw });
  const headers = storedHeaders(c.req.raw.headers);
  const envelope = serializeEnvelope(normalized, ROW_BUDGET_BYTES - raw.byteLength - JSON.stringify(headers).length);
  const attention = [normalized.attention, envelope.omitted && `data.original omitted: ${envelope.omitted}`].filter(Boolean).join("; ") || null;
  const plan = planTargets(await listConfigs(c.env.CONFIG, "target"), sourceId, normalized.kind);

  const result = await ledger.record({
    source: sourceId,
    deliveryId,
    idDerived: !idFromHeader,
    event: event ?? null,
    kind: normalized.kind,
    subject: normalized.subject,
    attention,
    receivedAt: started,
    sourceIp: ip,
    headers,
    body: raw,
    envelope: envelope.text,
    targets: plan.wanted,
    unfilteredTargets: plan.unfiltered,
    searchKeys: normalized.searchKeys,
  });
  log("info", "webhook accepted", {
    requestId: c.var.requestId,
    source: sourceId,
    deliveryId,
    kind: normalized.kind,
    outcome: result.status,
    targets: plan.wanted.length + plan.unfiltered.length,
    ms: Date.now() - started,
  });
  return c.json({ status: result.status, deliveryId, kind: normalized.kind });
});

/**
 * The id of a delivery without `X-ActiGraph-Delivery`: `derived-` + the first 32 hex digits of
 * SHA-256(event name + "\n" + body). Deterministic, so a resend of the same body dedupes.
 */
export function derivedDeliveryId(event: string | undefined, body: Uint8Array): string {
  const prefix = new TextEncoder().encode(`${(event ?? "").trim().toLowerCase()}\n`);
  const all = new Uint8Array(prefix.byteLength + body.byteLength);
  all.set(prefix);
  all.set(body, prefix.byteLength);
  return `derived-${sha256Hex(all).slice(0, 32)}`;
}

/**
 * Which targets an event is planned for: every valid target whose filter wants it, and every
 * target whose document is invalid (its events are held, and its filter decides once it is valid:
 * nothing is dropped while a document is broken). A document under an id the API refuses is no
 * target at all (config/store.ts lists it as invalid).
 */
export function planTargets(targets: readonly Listed<TargetConfig>[], sourceId: string, kind: string): { wanted: string[]; unfiltered: string[] } {
  const wanted: string[] = [];
  const unfiltered: string[] = [];
  for (const t of targets) {
    if (t.valid) {
      if (targetWants(t.config, sourceId, kind)) wanted.push(t.id);
    } else if (idSchema.safeParse(t.id).success) {
      log("warn", "target document is invalid; its events are held until it is fixed", { target: t.id, errors: t.errors });
      unfiltered.push(t.id);
    }
  }
  return { wanted, unfiltered };
}

let warnedAboutLimit = false;

/** MAX_BODY_BYTES as a limit: the default when unset or invalid, never above the ceiling (logged once per isolate). */
export function bodyLimit(value: string | undefined): number {
  const n = Number(value);
  if (!(n > 0)) return DEFAULT_MAX_BODY_BYTES;
  if (n > MAX_BODY_BYTES_CEILING) {
    if (!warnedAboutLimit) {
      warnedAboutLimit = true;
      log("error", "MAX_BODY_BYTES is above the ceiling; using the ceiling", { MAX_BODY_BYTES: value, ceiling: MAX_BODY_BYTES_CEILING });
    }
    return MAX_BODY_BYTES_CEILING;
  }
  return Math.floor(n);
}

function parseJson(raw: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(raw));
  } catch {
    return undefined;
  }
}
