/**
 * The hand-off contract between a source's Ledger and a target's Outbox. The ledger hands off
 * each planned (delivery, target) pair at least once; `Outbox.acceptHandoff` is idempotent on
 * (source, deliveryId), so a repeated hand-off never creates a second dispatch.
 */
export interface HandoffItem {
  /** Source id (the ledger the delivery lives in). */
  source: string;
  /** CentrePoint delivery id; the outbound `webhook-id` and CloudEvents `id`. */
  deliveryId: string;
  /** Normalized kind, e.g. `upload.completed`. */
  kind: string;
  /** `studies/<study>/subjects/<subject>` or null; the ordering key of ordered targets. */
  subject: string | null;
  /** When the relay accepted the delivery, epoch ms. */
  receivedAt: number;
  /** The CloudEvents envelope, serialized JSON. */
  envelope: string;
  /** The original CentrePoint body, byte-exact (for `format: "raw"`). */
  body: Uint8Array;
  /** The original `X-ActiGraph-*` headers worth forwarding (for `format: "raw"`), lower-case names. */
  headers: Record<string, string>;
  /** Planned while the target's document was invalid: the target's filter decides once its document is valid. */
  unfiltered?: boolean;
}
