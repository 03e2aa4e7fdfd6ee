import type { Bindings } from "../env";
import { fromBase64 } from "../lib/crypto";
import type { HandoffItem } from "../outbox/types";
import { readArchived } from "./archive";
import { handoffItem } from "./handoff";
import { decorator, type HandoffHost } from "./handoff-lanes";
import { isPruned } from "./integrity";
import { ledgerSource } from "./queries";
import type { ReplayResult } from "./types";

/** What a replay needs of its Durable Object: its SQL, the archive, and where a target's items go. */
export type ReplayHost = Pick<HandoffHost, "sql" | "outboxFor"> & { env: HandoffHost["env"] & Pick<Bindings, "ARCHIVE"> };

/**
 * Hands a delivery to these targets' outboxes again, as a new dispatch (for targets whose outbox
 * pruned it after delivery). The payload is the ledger's own, or, once retention pruned it, the
 * archived record's, checked against the ledger's digests; a clear error when neither has it.
 */
export async function replayFromLedger(host: ReplayHost, deliveryId: string, targets: string[]): Promise<ReplayResult> {
  const { sql } = host;
  const row = sql.exec("SELECT * FROM deliveries WHERE delivery_id = ?", deliveryId).toArray()[0];
  if (!row)
    return { ok: false, error: "not_found", message: `Delivery ${deliveryId} is not in the ledger (retention may have removed it; the archive keeps it).` };
  let payload: { body: Uint8Array; envelope: string } = { body: new Uint8Array(row.body as ArrayBuffer), envelope: row.envelope as string };
  const pruned = isPruned(row);
  if (pruned) {
    const archived = await readArchived(sql, host.env.ARCHIVE, row);
    if (!archived.ok) {
      const when = new Date(row.body_pruned_at as number).toISOString();
      return {
        ok: false,
        error: "archive_missing",
        message: `The body of delivery ${deliveryId} was pruned on ${when} and cannot be read back from the archive: ${archived.error}.`,
      };
    }
    payload = { body: fromBase64(archived.record.body!)!, envelope: archived.record.envelope! };
  }
  const item = handoffItem(ledgerSource(sql), row, payload);
  // A target that enriches this delivery gets it enriched again, from the stored enrichment, as its hand-off did.
  const plans = new Map(
    sql
      .exec<{ target_id: string; enrich: string }>("SELECT target_id, enrich FROM handoffs WHERE delivery_id = ? AND enrich IS NOT NULL", deliveryId)
      .toArray()
      .map((h) => [h.target_id, h.enrich]),
  );
  const decorate = plans.size > 0 ? decorator(sql, host.env) : null;
  const itemFor = (target: string): HandoffItem => {
    const enrich = plans.get(target);
    if (enrich === undefined || decorate === null) return item;
    return decorate(item, { seq: row.seq as number, deliveryId, targetId: target, tries: 0, unfiltered: false, enrich, size: 0 });
  };
  const results = await Promise.all(
    targets.map(async (target) => ({
      target,
      replayed: ((await host.outboxFor(target, "").acceptHandoff(target, [itemFor(target)])) as { inserted: number }).inserted > 0,
    })),
  );
  return { ok: true, payloadFrom: pruned ? "archive" : "ledger", targets: results };
}
