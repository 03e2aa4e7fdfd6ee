/**
 * The ledger's contract with the other folders: what a caller hands to `Ledger.record` and gets back, and
 * the planned hand-off shape other domains (src/pull/) write. Types and the constants that cross the
 * Durable Object's boundary only; no logic.
 */
import type { DeliveryRecord, DeliveryWithPayload, Provenance } from "./queries";

/** A planned row that differs from the plain hand-off: when it is first due, and its pull plan (JSON, read by src/pull/). */
export interface HandoffPlan {
  nextAt: number;
  enrich: string;
}

/** `next_at` of a row held until it is made due (a target with `enrichRequired`): the largest Date, never armed as an alarm. */
export const HOLD_AT = 8_640_000_000_000_000;

/** What ingress hands to the ledger for one authenticated delivery: the record's immutable fields, its payload and its plan. */
export type RecordInput = Pick<
  DeliveryRecord,
  "deliveryId" | "idDerived" | "event" | "kind" | "subject" | "attention" | "receivedAt" | "sourceIp" | "headers"
> & {
  source: string;
  body: Uint8Array;
  /** The CloudEvents envelope, serialized (providers/centrepoint/normalize.ts serializeEnvelope). */
  envelope: string;
  /** Ids of the targets that want this event, decided at acceptance. */
  targets: string[];
  /** Targets whose document was invalid at acceptance: planned and held, their filter decides once the document is valid. */
  unfilteredTargets?: string[];
  /** Exact-match search keys from normalization. */
  searchKeys?: string[];
  /** Default "webhook". */
  provenance?: Provenance;
  /** Hand-offs planned differently (src/pull/plan.ts): enriching targets' deadlines, the Puller's job. */
  handoffPlans?: Record<string, HandoffPlan>;
};

/** Outcome of `record`. */
export interface RecordResult {
  status: "accepted" | "duplicate";
  seq: number;
  duplicateCount: number;
}

/** A delivery with its body, envelope and hand-offs (the ledger's view). */
export type DeliveryDetail = DeliveryWithPayload;

/** Outcome of `Ledger.replay`: per target whether the dispatch went back to its outbox, and where its payload came from; or why it cannot be sent again. */
export type ReplayResult =
  | { ok: true; payloadFrom: "ledger" | "archive"; targets: { target: string; replayed: boolean }[] }
  | { ok: false; error: "not_found" | "archive_missing"; message: string };
