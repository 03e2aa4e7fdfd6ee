/**
 * The ledger's contract with the other folders: what a caller hands to `Ledger.record` and gets back, and
 * the planned hand-off shape other domains (src/pull/) write. Types and the constants that cross the
 * Durable Object's boundary only; no logic.
 */
import { z } from "zod";
import { PROVENANCES } from "../providers/centrepoint/constants";

/** Epoch ms: how the ledger keeps every time (the admin API answers them as ISO 8601). */
const epochMs = z.number().int();

/**
 * A stored delivery: the one definition of the ledger's record. The ledger's read model returns it
 * (`DeliveryRecord`), and the admin API's `deliverySchema` is built from it (times as ISO 8601), so a
 * field added here reaches the API or fails to compile.
 */
export const deliveryRecordSchema = z.object({
  seq: z.number().int(),
  deliveryId: z.string(),
  idDerived: z.boolean(),
  event: z.string().nullable(),
  kind: z.string(),
  subject: z.string().nullable(),
  attention: z.string().nullable(),
  receivedAt: epochMs,
  sourceIp: z.string().nullable(),
  headers: z.record(z.string(), z.string()),
  bodySha256: z.string(),
  bodySize: z.number().int(),
  recordHash: z.string(),
  duplicateCount: z.number().int(),
  lastSeenAt: epochMs,
  provenance: z.enum(PROVENANCES).meta({ description: "webhook: pushed by CentrePoint; centrepoint-history: backfilled from its delivery history" }),
  sameBodyAs: z.string().nullable().meta({ description: "an earlier delivery of this source with the same body under another id (a possible replay)" }),
  bodyPrunedAt: epochMs.nullable().meta({ description: "when retention pruned the body and the envelope (digests kept; the archive has them), or null" }),
});

/** A stored delivery as the ledger returns it. Times are epoch ms. */
export type DeliveryRecord = z.infer<typeof deliveryRecordSchema>;

/** A hand-off row of a delivery, as the ledger shows it. Times are epoch ms. */
export interface HandoffView {
  targetId: string;
  plannedAt: number;
  handedAt: number | null;
  tries: number;
  lastError: string | null;
}

/** A delivery with its body, envelope and hand-off rows (body and envelope empty once pruned: `bodyPrunedAt`). */
export interface DeliveryWithPayload extends DeliveryRecord {
  body: Uint8Array;
  envelope: string;
  handoffs: HandoffView[];
}

/** How a delivery came into the ledger: pushed by CentrePoint, or backfilled from its delivery history. */
export type Provenance = DeliveryRecord["provenance"];

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
