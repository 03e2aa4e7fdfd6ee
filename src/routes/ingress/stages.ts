import type { Context } from "hono";
import { idSchema, type SourceConfig } from "../../config/schemas";
import { listConfigs, loadConfig } from "../../config/store";
import type { AppEnv } from "../../env";
import { readBodyLimited } from "../../lib/body";
import type { ErrorCode } from "../../lib/errors";
import { ipAllowed } from "../../lib/ip";
import { log } from "../../lib/log";
import { err, ok, type Result } from "../../lib/result";
import type { RecordInput } from "../../ledger/types";
import type { HandshakeEntry } from "../../ledger/queries";
import { authenticate } from "../../providers/centrepoint/auth";
import { CENTREPOINT_ADDRESS_KEYWORDS, HEADER } from "../../providers/centrepoint/constants";
import { detectHandshake, type Handshake } from "../../providers/centrepoint/handshake";
import { type ParsedBody, parseDeliveryBody } from "../../providers/centrepoint/normalize";
import { bodyLimit } from "../../config/limits";
import { correlateCompletion } from "../../pull/correlate";
import { buildDeliveryRecord } from "../../ledger/delivery-record";

/**
 * CentrePoint ingress as a chain of typed stages, cheap first: load the source, allow the
 * address, read (and parse, once) the body, authenticate, answer a handshake, or build the
 * record. Each stage passes what the next needs, or refuses; a refusal says whether it is counted
 * in the source's ledger (only requests from an allowed address are: strangers must not cost a
 * durable write). The route (routes/webhooks.ts) runs them and answers.
 */

/** Why ingress refused a request: the caller's status and code, and a reason for logs and metrics. */
export interface Refusal {
  status: 400 | 401 | 403 | 404 | 413 | 415 | 503;
  code: ErrorCode;
  message: string;
  /** Short code from a fixed set, for the log line and `relay_deliveries_rejected_total`. */
  reason: string;
  /** Counted in the source's ledger (the request came from an allowed address). */
  counted: boolean;
}

/** What every stage knows about the request. */
export interface Arrival {
  sourceId: string;
  ip: string | null;
  receivedAt: number;
}

/** Content types that cannot carry a CentrePoint delivery. */
const REFUSED_MEDIA_TYPES = /^(multipart\/|application\/x-www-form-urlencoded)/i;

const refuse = (status: Refusal["status"], code: ErrorCode, message: string, reason: string, counted: boolean): Result<never, Refusal> =>
  err({ status, code, message, reason, counted });

/** Stage 1: the source document, valid and enabled. Not counted: anyone can name a source. */
export async function loadSource(c: Context<AppEnv>, a: Arrival): Promise<Result<SourceConfig, Refusal>> {
  if (!idSchema.safeParse(a.sourceId).success) return refuse(404, "not_found", "Unknown source.", "bad_source_id", false);
  const loaded = await loadConfig(c.env.CONFIG, "source", a.sourceId);
  if (loaded.state === "missing") return refuse(404, "not_found", "Unknown source.", "unknown_source", false);
  if (loaded.state === "invalid") {
    log("error", "source document is invalid", { source: a.sourceId, errors: loaded.errors });
    return refuse(503, "source_misconfigured", "This source's configuration is invalid; the operator has been told.", "invalid_source_document", false);
  }
  if (!loaded.config.enabled) return refuse(404, "not_found", "Unknown source.", "source_disabled", false);
  return ok(loaded.config);
}

/** Stage 2: the caller's address is on the source's allow-list. Not counted. */
export function allowAddress(source: SourceConfig, a: Arrival): Result<void, Refusal> {
  return ipAllowed(a.ip ?? undefined, source.allowedIps, CENTREPOINT_ADDRESS_KEYWORDS)
    ? ok(undefined)
    : refuse(403, "forbidden", "Source address not allowed.", "ip_not_allowed", false);
}

/** The body as read: its bytes, byte-exact, and its one parse. */
export interface ReadBody {
  raw: Uint8Array;
  parsed: ParsedBody;
}

/** Stage 3: a JSON-capable content type, at most the body limit, read once as bytes and parsed once. Counted. */
export async function readBody(c: Context<AppEnv>): Promise<Result<ReadBody, Refusal>> {
  if (REFUSED_MEDIA_TYPES.test(c.req.header("content-type") ?? ""))
    return refuse(415, "unsupported_media_type", "CentrePoint deliveries are JSON.", "media_type", true);
  const limit = bodyLimit(c.env.MAX_BODY_BYTES);
  const body = await readBodyLimited(c.req.raw, limit);
  if (!body.ok) return refuse(413, "payload_too_large", `Body larger than ${limit} bytes.`, "too_large", true);
  return ok({ raw: body.value, parsed: parseDeliveryBody(body.value) });
}

/** Outcome of authentication: ok, or why not (absent credentials matter to the handshake). */
export type AuthOutcome = Awaited<ReturnType<typeof authenticate>>;

/** Stage 4: the source's credentials (the refusal comes later: a handshake may tolerate absent ones). */
export async function checkCredentials(c: Context<AppEnv>, source: SourceConfig, a: Arrival, body: ReadBody): Promise<AuthOutcome> {
  const auth = await authenticate(source.auth, c.env, { authorization: c.req.header("authorization"), signature: c.req.header(HEADER.signature) }, body.raw);
  if (!auth.ok && auth.error.reason === "secret_unset")
    log("error", "source names a secret that is not set; failing closed", { source: a.sourceId, secret: auth.error.secretName });
  return auth;
}

/** A handshake to answer: the code to echo and the audit row, or a refusal with its audit outcome. */
export type HandshakeAnswer = { kind: "echo"; handshake: Handshake; audit: HandshakeAudit } | { kind: "refuse"; refusal: Refusal; audit: HandshakeAudit };

/** The handshake log's row (outcome included). */
export type HandshakeAudit = HandshakeEntry;

/**
 * Stage 5: a validation handshake, or null when the request is a delivery. Policy
 * (docs/security.md): credentials that are present must be valid; absent ones are tolerated,
 * because CentrePoint does not document sending them. Counted when refused.
 */
export function handshakeOf(c: Context<AppEnv>, source: SourceConfig, a: Arrival, body: ReadBody, auth: AuthOutcome): HandshakeAnswer | null {
  const handshake = detectHandshake(c.req.header(HEADER.event), c.req.header(HEADER.hookSecret), body.parsed.json.ok ? body.parsed.json.value : undefined);
  if (!handshake) return null;
  const base = {
    receivedAt: a.receivedAt,
    sourceIp: a.ip,
    webhookId: c.req.header(HEADER.registrationId) ?? (handshake.ok ? handshake.value.webhookId : null),
    deliveryId: c.req.header(HEADER.delivery) ?? null,
    authenticated: auth.ok && source.auth.type !== "none",
  };
  if (!auth.ok && auth.error.reason !== "missing") {
    return {
      kind: "refuse",
      audit: { ...base, outcome: `refused: ${auth.error.reason}` },
      refusal: refusal(401, "unauthorized", "Invalid credentials.", `handshake_auth_${auth.error.reason}`),
    };
  }
  if (!handshake.ok) {
    return {
      kind: "refuse",
      audit: { ...base, outcome: `refused: ${handshake.error}` },
      refusal: refusal(400, "bad_request", `Validation refused: ${handshake.error}.`, "bad_validation_code"),
    };
  }
  return { kind: "echo", handshake: handshake.value, audit: { ...base, outcome: "echoed" } };
}

/** Stage 6: a delivery must be authenticated. Counted. */
export function requireAuthenticated(auth: AuthOutcome): Result<void, Refusal> {
  return auth.ok ? ok(undefined) : err(refusal(401, "unauthorized", "Invalid credentials.", `auth_${auth.error.reason}`));
}

/**
 * Stage 7: the ledger's record of an authenticated delivery (ledger/delivery-record.ts, the one way a
 * record is built); a data_retrieval_complete of a request the relay made names its trigger (src/pull/correlate.ts).
 */
export async function buildRecord(c: Context<AppEnv>, source: SourceConfig, a: Arrival, body: ReadBody): Promise<RecordInput> {
  const record = buildDeliveryRecord(
    { sourceId: a.sourceId, headers: c.req.raw.headers, body: body.raw, parsed: body.parsed, receivedAt: a.receivedAt, sourceIp: a.ip, provenance: "webhook" },
    await listConfigs(c.env.CONFIG, "target"),
    { autoRequest: source.centrepoint?.autoRequest?.fileFormat ?? null },
  );
  return correlateCompletion(c.env, a.sourceId, source.centrepoint, record);
}

/** A counted refusal (after the address check). */
function refusal(status: Refusal["status"], code: ErrorCode, message: string, reason: string): Refusal {
  return { status, code, message, reason, counted: true };
}
