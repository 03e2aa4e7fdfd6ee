import { idSchema, type TargetConfig } from "../config/schemas";
import type { Listed } from "../config/store";
import { sha256Hex } from "../lib/crypto";
import { storedHeaders } from "../lib/headers";
import { log } from "../lib/log";
import type { RecordInput } from "./types";
import { targetWants } from "../config/match";
import { type DeliveryProvenance, HEADER } from "../providers/centrepoint/constants";
import { normalizeDelivery, type ParsedBody, serializeEnvelope } from "../providers/centrepoint/normalize";
import { envelopeData, keysOf } from "../pull/facts";
import { planPull, type RawFileFormat } from "../pull/plan";
import { ROW_BUDGET_BYTES } from "../config/limits";

/**
 * The one way a delivery becomes the ledger's record, whether CentrePoint pushed it (ingress) or
 * the relay read it from CentrePoint's delivery history (src/reconcile/): the delivery id (the
 * header, or the derived id), normalization, stored headers (lower-case, redacted, clipped), the
 * envelope fitted to the row budget, and the target plan. Pure: the targets are passed in.
 */

/** A delivery as it reached the relay, pushed or read from the history. */
export interface DeliveryArrival {
  sourceId: string;
  /** The request headers as CentrePoint sent them (any casing; several values of one name joined as `Headers` joins them). */
  headers: Headers;
  /** The raw body, byte-exact, and its one parse. */
  body: Uint8Array;
  parsed: ParsedBody;
  /** When the relay records it, epoch ms. */
  receivedAt: number;
  /** `CF-Connecting-IP` of a pushed delivery; null for a backfill. */
  sourceIp: string | null;
  provenance: DeliveryProvenance;
  /** When CentrePoint created the delivery, epoch ms: the envelope's time when the payload has none (default `receivedAt`). */
  createdAt?: number;
}

/** Longest delivery id taken from `X-ActiGraph-Delivery` (CentrePoint's are 36 characters). */
const MAX_DELIVERY_ID_LENGTH = 128;

/**
 * The ledger's record of a delivery: id, normalized envelope (fitted to a row), stored headers,
 * planned targets, and the pull side's plan (enrichment, the automatic raw-data request of a source
 * with `autoRequest`: src/pull/plan.ts).
 */
export function buildDeliveryRecord(
  a: DeliveryArrival,
  targets: readonly Listed<TargetConfig>[],
  options: { autoRequest?: RawFileFormat | null } = {},
): RecordInput {
  const event = a.headers.get(HEADER.event);
  const { deliveryId, idDerived } = deliveryIdOf(a.headers, a.body);
  const normalized = normalizeDelivery({
    sourceId: a.sourceId,
    deliveryId,
    event,
    receivedAt: a.createdAt ?? a.receivedAt,
    body: a.body,
    parsed: a.parsed,
    provenance: a.provenance,
  });
  const headers = storedHeaders(a.headers);
  const envelope = serializeEnvelope(normalized, ROW_BUDGET_BYTES - a.body.byteLength - JSON.stringify(headers).length);
  const attention = [normalized.attention, envelope.omitted && `data.original omitted: ${envelope.omitted}`].filter(Boolean).join("; ") || null;
  const plan = planTargets(targets, a.sourceId, normalized.kind);
  const pull = planPull({
    targets,
    wanted: plan.wanted,
    keys: keysOf(normalized.kind, envelopeData(envelope.text)),
    receivedAt: a.receivedAt,
    autoRequest: options.autoRequest ?? null,
  });
  return {
    source: a.sourceId,
    deliveryId,
    idDerived,
    event,
    kind: normalized.kind,
    subject: normalized.subject,
    attention,
    receivedAt: a.receivedAt,
    sourceIp: a.sourceIp,
    headers,
    body: a.body,
    envelope: envelope.text,
    targets: [...plan.wanted, ...pull.extraTargets],
    unfilteredTargets: plan.unfiltered,
    searchKeys: normalized.searchKeys,
    provenance: a.provenance,
    ...(Object.keys(pull.plans).length > 0 && { handoffPlans: pull.plans }),
  };
}

/**
 * A delivery's id: `X-ActiGraph-Delivery` trimmed, when it is 1 to 128 visible ASCII characters;
 * otherwise the derived id (`derivedDeliveryId`), so a delivery without a usable id still dedupes.
 */
export function deliveryIdOf(headers: Headers, body: Uint8Array): { deliveryId: string; idDerived: boolean } {
  const headerId = headers.get(HEADER.delivery)?.trim();
  const fromHeader = headerId !== undefined && headerId.length > 0 && headerId.length <= MAX_DELIVERY_ID_LENGTH && /^[\x21-\x7e]+$/.test(headerId);
  return fromHeader
    ? { deliveryId: headerId, idDerived: false }
    : { deliveryId: derivedDeliveryId(headers.get(HEADER.event) ?? undefined, body), idDerived: true };
}

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
