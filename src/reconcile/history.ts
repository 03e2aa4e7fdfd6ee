/**
 * Reconciliation's pure core: what one row of CentrePoint's delivery history is to the relay, and
 * how the distinct delivery ids of a run are counted. No I/O, no clock: times are passed in
 * (epoch ms). Rules: docs/reconciliation.md.
 */
import { z } from "zod";
import type { DeliveryArrival } from "../ledger/delivery-record";
import { deliveryIdOf } from "../ledger/delivery-record";
import { HEADER } from "../providers/centrepoint/constants";
import { detectHandshake } from "../providers/centrepoint/handshake";
import { parseDeliveryBody } from "../providers/centrepoint/normalize";
import { describeSchemaError } from "../providers/centrepoint/api/client";
import { historyItemSchema, parseHistoryHeaderValues, wasDelivered, type HistoryItem } from "../providers/centrepoint/api/schemas";

/**
 * A history row as the relay reads it:
 * - `unreadable`: not a history item the relay understands (schema, header JSON, body too large); counted as an error;
 * - `outside`: created before the look-back; read, never reconciled;
 * - `skip`: a validation handshake or the 2015 ping; never a delivery;
 * - `delivery`: a delivery, with everything needed to record it exactly as ingress would.
 * `delivered`: this send attempt got a 2xx answer and no `errorMessage`.
 */
export type HistoryRow =
  | { kind: "unreadable"; error: string }
  | { kind: "outside" }
  | { kind: "skip"; deliveryId: string; delivered: boolean }
  | { kind: "delivery"; deliveryId: string; delivered: boolean; arrival: HistoryArrival };

/** The parts of a `DeliveryArrival` a history row provides (the source and the time of recording come from the run). */
export type HistoryArrival = Pick<DeliveryArrival, "headers" | "body" | "parsed" | "createdAt">;

/** A page item kept as it came, so one malformed row is an error of its own instead of failing its page. */
export const historyRowSchema = z.unknown();

/** Reads one raw history row. `lookbackFrom`: epoch ms; `maxBodyBytes`: the ingress body limit. Never throws. */
export function readHistoryRow(raw: unknown, lookbackFrom: number, maxBodyBytes: number): HistoryRow {
  const parsed = historyItemSchema.safeParse(raw);
  if (!parsed.success) return { kind: "unreadable", error: `history item ${itemIdOf(raw)}: ${describeSchemaError(parsed.error)}` };
  const item = parsed.data;
  if (item.createdAtMs < lookbackFrom) return { kind: "outside" };
  const headers = historyHeaders(item);
  if (!headers.ok) return { kind: "unreadable", error: `history item ${item.id}: request.${headers.error}` };
  const body = new TextEncoder().encode(item.request.body);
  const { deliveryId } = deliveryIdOf(headers.value, body);
  const delivered = wasDelivered(item);
  const parsedBody = parseDeliveryBody(body);
  const json = parsedBody.json.ok ? parsedBody.json.value : undefined;
  const handshake = detectHandshake(headers.value.get(HEADER.event) ?? undefined, headers.value.get(HEADER.hookSecret) ?? undefined, json);
  if (handshake !== null || isPing(json)) return { kind: "skip", deliveryId, delivered };
  if (body.byteLength > maxBodyBytes)
    return {
      kind: "unreadable",
      error: `history item ${item.id} (delivery ${deliveryId}): body of ${body.byteLength} bytes is over the ${maxBodyBytes}-byte limit`,
    };
  return { kind: "delivery", deliveryId, delivered, arrival: { headers: headers.value, body, parsed: parsedBody, createdAt: item.createdAtMs } };
}

/**
 * The request headers of a history item as `Headers`, every value of every name appended in
 * order, the way ingress sees the same request (so a delivery without an id gets the same derived
 * id). No fallback to the item's `webhookEvent`: a request sent without `X-ActiGraph-Event` is
 * recorded as ingress would record it. Values `Headers` refuses (control characters) are left out.
 */
function historyHeaders(item: HistoryItem): { ok: true; value: Headers } | { ok: false; error: string } {
  const values = parseHistoryHeaderValues(item.request.headers);
  if (!values.ok) return { ok: false, error: values.error };
  const headers = new Headers();
  for (const [name, list] of Object.entries(values.value)) {
    for (const value of list) {
      try {
        headers.append(name, value);
      } catch {
        // not a valid header name or value: CentrePoint could not have sent it either
      }
    }
  }
  return { ok: true, value: headers };
}

/** CentrePoint's 2015 test delivery: a JSON object body with `"test": "ping"`. */
function isPing(json: unknown): boolean {
  return typeof json === "object" && json !== null && !Array.isArray(json) && (json as Record<string, unknown>).test === "ping";
}

/** The `id` of a raw row for an error message, or "?". */
function itemIdOf(raw: unknown): string {
  const id = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>).id : undefined;
  return typeof id === "number" || (typeof id === "string" && id.length <= 40) ? String(id) : "?";
}

/** What the run knows of one distinct delivery id (`pruned`: the ledger recorded it once, and retention has removed it since). */
export type ItemState = "known" | "pruned" | "backfilling" | "backfilled" | "skipped" | "error";

/** A group of a run's distinct delivery ids with the same facts, and how many there are. */
export interface ItemGroup {
  state: ItemState;
  /** The ledger's provenance of a `known` delivery. */
  provenance: string | null;
  /** Whether any history row of it was a successful send. */
  delivered: boolean;
  count: number;
}

/** The classes of a run's report; each distinct delivery id is in exactly one. */
export interface ItemCounts {
  matched: number;
  /** Ids the ledger recorded once and retention has removed since: known, never backfilled again. */
  knownPruned: number;
  backfilled: number;
  recordedButFailedAtCentrePoint: number;
  skipped: number;
  /** Ids whose backfill failed or was never confirmed (also counted in the run's `errors`). */
  failed: number;
}

/**
 * Counts a run's distinct delivery ids: `backfilled` (missing from the ledger before the run),
 * `recordedButFailedAtCentrePoint` (pushed, in the ledger, but every history row is a failure:
 * the relay's 200 never reached CentrePoint), `matched` (every other id the ledger had, earlier
 * backfills included), `knownPruned` (recorded once, removed by retention since: never backfilled
 * again), `skipped` (handshakes, the ping), `failed` (a backfill that did not happen).
 */
export function countItems(groups: readonly ItemGroup[]): ItemCounts {
  const counts: ItemCounts = { matched: 0, knownPruned: 0, backfilled: 0, recordedButFailedAtCentrePoint: 0, skipped: 0, failed: 0 };
  for (const g of groups) {
    if (g.state === "backfilled") counts.backfilled += g.count;
    else if (g.state === "skipped") counts.skipped += g.count;
    else if (g.state === "pruned") counts.knownPruned += g.count;
    else if (g.state === "known") {
      if (g.provenance === "webhook" && !g.delivered) counts.recordedButFailedAtCentrePoint += g.count;
      else counts.matched += g.count;
    } else counts.failed += g.count;
  }
  return counts;
}
