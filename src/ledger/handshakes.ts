import { bumpCounters } from "../lib/counters";
import { clipHeaderValue } from "../lib/headers";
import { COUNTER, type HandshakeEntry } from "./queries";

/**
 * The ledger's handshake log (`handshakes`): validation handshakes, never deliveries, never handed
 * off; bounded to the newest rows. The read side is queries.ts `listHandshakes`.
 */

/** Newest handshake rows kept (older ones are dropped and counted). */
export const HANDSHAKE_LOG_CAP = 10_000;

/** Appends a handshake and drops the rows beyond the newest `cap` (run it inside a transaction). */
export function appendHandshake(sql: SqlStorage, input: HandshakeEntry, cap: number): void {
  const id = sql
    .exec<{ id: number }>(
      "INSERT INTO handshakes (received_at, source_ip, webhook_id, delivery_id, authenticated, outcome) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
      input.receivedAt,
      input.sourceIp === null ? null : clipHeaderValue(input.sourceIp),
      input.webhookId === null ? null : clipHeaderValue(input.webhookId),
      input.deliveryId === null ? null : clipHeaderValue(input.deliveryId),
      input.authenticated ? 1 : 0,
      clipHeaderValue(input.outcome),
    )
    .one().id;
  // Ids only grow, so in steady state this removes the one oldest row: O(1) per stranger's request.
  const removed = sql.exec("DELETE FROM handshakes WHERE id <= ? RETURNING id", id - cap).toArray().length;
  bumpCounters(sql, { [COUNTER.handshakesKept]: 1 - removed, [COUNTER.handshakesDropped]: removed });
}
