/**
 * Correlation of a data_retrieval_complete delivery with the raw-data request the relay made
 * (docs/pull.md): before it is recorded, the source's CentrePointGateway is told the request ended
 * (its slot frees) and answers which delivery triggered it; the envelope then carries the CloudEvents
 * extension attribute `triggerdelivery` (and `triggersource` when that delivery is another source's).
 * Best effort and bounded: a slow or failing lookup leaves the envelope as it is, and the relay's
 * polling still frees the slot.
 */
import type { CentrePointApiConfig } from "../config/schemas";
import type { Bindings } from "../env";
import { log } from "../lib/log";
import type { RecordInput } from "../ledger/types";
import { gatewayFor } from "./gateway";
import { envelopeData, keysOf } from "./facts";

/** Extension attribute naming the raw_processing.completed delivery whose automatic request this event completes. */
export const TRIGGER_ATTRIBUTE = "triggerdelivery";
/** Extension attribute naming that delivery's source, only when it is not this event's. */
export const TRIGGER_SOURCE_ATTRIBUTE = "triggersource";
/** Longest the correlation may hold the record back, ms. */
export const CORRELATE_TIMEOUT_MS = 2_000;

/** The record, with the triggering delivery named in its envelope when the completed request is one of the relay's. Never throws. */
export async function correlateCompletion(env: Bindings, sourceId: string, block: CentrePointApiConfig | undefined, record: RecordInput): Promise<RecordInput> {
  if (!block || !record.kind.startsWith("data_retrieval.")) return record;
  const data = envelopeData(record.envelope);
  const trackingId = keysOf(record.kind, data).trackingId;
  if (trackingId === null) return record;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const lookup = gatewayFor(env, block).completion(trackingId, {
      status: record.kind === "data_retrieval.completed" ? "completed" : "error",
      errorMessage: typeof data?.errorMessage === "string" ? data.errorMessage : null,
      deliveryId: record.deliveryId,
    });
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), CORRELATE_TIMEOUT_MS)));
    const trigger = await Promise.race([lookup, timeout]);
    if (trigger === "timeout") {
      log("warn", "raw-data request correlation timed out; recorded without it", { source: sourceId, deliveryId: record.deliveryId, trackingId });
      return record;
    }
    if (trigger === null) return record;
    const { data: body, ...attributes } = JSON.parse(record.envelope) as Record<string, unknown>;
    const named = { [TRIGGER_ATTRIBUTE]: trigger.deliveryId, ...(trigger.source !== sourceId && { [TRIGGER_SOURCE_ATTRIBUTE]: trigger.source }) };
    return { ...record, envelope: JSON.stringify({ ...attributes, ...named, data: body }) };
  } catch (e) {
    log("warn", "raw-data request correlation failed; recorded without it", { source: sourceId, deliveryId: record.deliveryId, error: String(e) });
    return record;
  } finally {
    clearTimeout(timer);
  }
}
