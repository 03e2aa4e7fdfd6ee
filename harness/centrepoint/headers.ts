import { randomUUID } from "node:crypto";
import { HEADER, USER_AGENT_TOKEN } from "../../src/providers/centrepoint/constants.ts";
import type { Rng } from "../prng.ts";

type HeaderName = (typeof HEADER)[keyof typeof HEADER];

/**
 * The casing CentrePoint puts on the wire for each header the relay reads (protocol reference,
 * section 1). Lookups are case-insensitive; the harness sends the documented casing anyway.
 */
export const WIRE_NAME: Record<HeaderName, string> = {
  [HEADER.event]: "X-ActiGraph-Event",
  [HEADER.delivery]: "X-ActiGraph-Delivery",
  [HEADER.registrationId]: "X-ActiGraph-Webhook-id",
  [HEADER.signature]: "X-ActiGraph-Signature",
  [HEADER.hookSecret]: "X-ActiGraph-Hook-Secret",
  [HEADER.clientCertUsed]: "X-Client-Cert-Used",
};

/** The User-Agent of captured deliveries, token repeated as CentrePoint sends it. */
export const USER_AGENT = `${USER_AGENT_TOKEN}1.0 ${USER_AGENT_TOKEN}1.0`;

/** The webhook registration id used when a caller does not name one. */
const DEFAULT_WEBHOOK_ID = "74";

/** A fresh 36-character delivery id like CentrePoint's (random; the simulator uses seeded `guidLike`). */
export function deliveryId(): string {
  return randomUUID();
}

/** What varies between deliveries on the wire; every field may be left out. */
export interface DeliveryMeta {
  /** `X-ActiGraph-Event`; `upload` when left out. */
  event?: string;
  /** `X-ActiGraph-Delivery`; no header when left out (a request without one, or a load generator that sets it per request). */
  deliveryId?: string;
  /** `X-ActiGraph-Webhook-id`, the webhook registration; `74` when left out. */
  webhookId?: string;
  /** `X-ActiGraph-Signature`, e.g. from `signBody`. */
  signature?: string;
  /** `Authorization`, Basic or Bearer. */
  authorization?: string;
}

/**
 * The headers of one CentrePoint delivery, in the documented casing: webhook, event and delivery
 * ids, the client-certificate flag, User-Agent, Content-Type and the credentials given. With `rng`
 * also what the .NET client adds: `Expect: 100-continue` and the Application Insights trace
 * headers of 2019+ captures (ids from `rng`); leave it out for clients that do not wait for
 * `100 Continue` (a plain node:http request, autocannon). Content-Length and Connection come from
 * the HTTP client.
 */
export function centrepointHeaders(meta: DeliveryMeta = {}, rng?: Rng): Record<string, string> {
  const headers: Record<string, string> = {
    [WIRE_NAME[HEADER.registrationId]]: meta.webhookId ?? DEFAULT_WEBHOOK_ID,
    [WIRE_NAME[HEADER.event]]: meta.event ?? "upload",
  };
  if (meta.deliveryId !== undefined) headers[WIRE_NAME[HEADER.delivery]] = meta.deliveryId;
  headers[WIRE_NAME[HEADER.clientCertUsed]] = "False";
  headers["User-Agent"] = USER_AGENT;
  headers["Content-Type"] = "application/json; charset=utf-8";
  if (rng) {
    const traceId = rng.hex(32);
    headers.Expect = "100-continue";
    headers["request-id"] = `|${traceId}.${rng.hex(16)}.`;
    headers.traceparent = `00-${traceId}-${rng.hex(16)}-00`;
  }
  if (meta.signature !== undefined) headers[WIRE_NAME[HEADER.signature]] = meta.signature;
  if (meta.authorization !== undefined) headers.Authorization = meta.authorization;
  return headers;
}

/**
 * `headers` with `changes` applied, names compared case-insensitively (so `content-type` replaces
 * `Content-Type` instead of sending both); an `undefined` value removes the header.
 */
export function withHeaders(headers: Record<string, string>, changes: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  const changed = new Set(Object.keys(changes).map((name) => name.toLowerCase()));
  for (const [name, value] of Object.entries(headers)) if (!changed.has(name.toLowerCase())) out[name] = value;
  for (const [name, value] of Object.entries(changes)) if (value !== undefined) out[name] = value;
  return out;
}
