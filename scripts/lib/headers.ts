import { HEADER, USER_AGENT_TOKEN } from "../../src/providers/centrepoint/constants.ts";
import type { Rng } from "./prng.ts";

type HeaderName = (typeof HEADER)[keyof typeof HEADER];

/**
 * The casing CentrePoint puts on the wire for each header the relay reads (protocol reference,
 * section 1). Lookups are case-insensitive; the simulator sends the documented casing anyway.
 */
export const WIRE_NAME: Record<HeaderName, string> = {
  [HEADER.event]: "X-ActiGraph-Event",
  [HEADER.delivery]: "X-ActiGraph-Delivery",
  [HEADER.webhookId]: "X-ActiGraph-Webhook-id",
  [HEADER.signature]: "X-ActiGraph-Signature",
  [HEADER.hookSecret]: "X-ActiGraph-Hook-Secret",
  [HEADER.clientCertUsed]: "X-Client-Cert-Used",
};

/** The User-Agent of captured deliveries, token repeated as CentrePoint sends it. */
export const USER_AGENT = `${USER_AGENT_TOKEN}1.0 ${USER_AGENT_TOKEN}1.0`;

/** What identifies one delivery on the wire. */
export interface DeliveryMeta {
  event: string;
  deliveryId: string;
  webhookId: string;
}

/**
 * The headers of one CentrePoint delivery, credentials excluded: event, delivery and webhook
 * ids, the client-certificate flag, the .NET client's `Expect: 100-continue` and the Application
 * Insights trace headers of 2019+ captures. Content-Length and Connection come from the HTTP client.
 */
export function centrepointHeaders(meta: DeliveryMeta, rng: Rng): Record<string, string> {
  const traceId = rng.hex(32);
  return {
    [WIRE_NAME[HEADER.webhookId]]: meta.webhookId,
    [WIRE_NAME[HEADER.event]]: meta.event,
    [WIRE_NAME[HEADER.delivery]]: meta.deliveryId,
    [WIRE_NAME[HEADER.clientCertUsed]]: "False",
    "User-Agent": USER_AGENT,
    "Content-Type": "application/json; charset=utf-8",
    Expect: "100-continue",
    "request-id": `|${traceId}.${rng.hex(16)}.`,
    traceparent: `00-${traceId}-${rng.hex(16)}-00`,
  };
}
