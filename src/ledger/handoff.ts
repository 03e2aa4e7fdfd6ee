import { BATCH_BYTES, takeByBytes } from "../lib/batch";
import { inChunks, placeholders } from "../lib/sql";
import { backoffDelayMs } from "../lib/backoff";
import type { HandoffItem } from "../outbox/types";
import { HEADER } from "../providers/centrepoint/constants";
import { type HandoffPlan, HOLD_AT } from "./types";

/**
 * The ledger's side of the hand-off to the targets' outboxes, as plain functions over its
 * SqlStorage. A hand-off row is planned in the same transaction as its delivery; the ledger's
 * lanes (handoff-lanes.ts) hand due rows to `Outbox.acceptHandoff` (idempotent on (source, delivery id)) and mark
 * them handed, so a hand-off is at-least-once and never makes a second delivery. Times are epoch ms.
 */

/** A hand-off row that is due, with the size of what it carries. */
export interface DueHandoff {
  seq: number;
  deliveryId: string;
  targetId: string;
  tries: number;
  unfiltered: boolean;
  /** The row's pull plan (JSON; src/pull/plan.ts), or null for a plain hand-off. */
  enrich: string | null;
  /** Bytes of body, envelope and headers. */
  size: number;
}

/** Retry timing of a failed hand-off: full jitter, 1 s doubling to 5 min (the outbox's backoff with this policy). */
export const HANDOFF_RETRY = { baseDelayMs: 1_000, maxDelayMs: 300_000 } as const;
/** Hand-off rows read per alarm run at most, before the byte budget cuts the batch. */
const HANDOFF_ROWS = 200;

/**
 * Plans one hand-off per target; `unfiltered` targets' filters decide later (their document was
 * invalid). A target in `plans` is first due at its plan's time and keeps its plan (enrichment).
 * Returns how many rows it planned.
 */
export function planHandoffs(
  sql: SqlStorage,
  deliveryId: string,
  at: number,
  targets: readonly string[],
  unfiltered: readonly string[],
  plans: Readonly<Record<string, HandoffPlan>> = {},
): number {
  const rows = new Map<string, boolean>();
  for (const t of unfiltered) rows.set(t, true);
  for (const t of targets) rows.set(t, false);
  for (const [target, isUnfiltered] of rows) {
    const plan = Object.hasOwn(plans, target) ? plans[target] : undefined;
    sql.exec(
      "INSERT INTO handoffs (delivery_id, target_id, planned_at, next_at, unfiltered, enrich) VALUES (?, ?, ?, ?, ?, ?)",
      deliveryId,
      target,
      at,
      plan?.nextAt ?? at,
      isUnfiltered ? 1 : 0,
      plan?.enrich ?? null,
    );
  }
  return rows.size;
}

/**
 * Due hand-offs, earliest first, cut to the batch byte budget (at least one row when any is due),
 * leaving out the targets in `busy` (a hand-off to them is in flight).
 */
export function dueHandoffs(sql: SqlStorage, now: number, busy: readonly string[] = []): DueHandoff[] {
  const rows = sql
    .exec<{ seq: number; delivery_id: string; target_id: string; tries: number; unfiltered: number; enrich: string | null; size: number }>(
      `SELECT d.seq, h.delivery_id, h.target_id, h.tries, h.unfiltered, h.enrich, length(d.body) + length(d.envelope) + length(d.headers) AS size
       FROM handoffs h JOIN deliveries d ON d.delivery_id = h.delivery_id
       WHERE h.handed_at IS NULL AND h.next_at <= ? AND h.target_id NOT IN (SELECT value FROM json_each(?)) ORDER BY h.next_at LIMIT ?`,
      now,
      JSON.stringify(busy),
      HANDOFF_ROWS,
    )
    .toArray()
    .map((r) => ({
      seq: r.seq,
      deliveryId: r.delivery_id,
      targetId: r.target_id,
      tries: r.tries,
      unfiltered: r.unfiltered === 1,
      enrich: r.enrich,
      size: r.size,
    }));
  return takeByBytes(rows, (r) => r.size, BATCH_BYTES);
}

/**
 * The hand-off items of due rows, grouped by target. A row that cannot be read becomes an error
 * for its target's hand-off. A row with a pull plan gets its item from `decorate` (src/pull/: the
 * enriched envelope, or the Puller's job).
 */
export function buildItems(
  sql: SqlStorage,
  source: string,
  due: readonly DueHandoff[],
  decorate?: (item: HandoffItem, row: DueHandoff) => HandoffItem,
): Map<string, { rows: DueHandoff[]; items: HandoffItem[] }> {
  const bySeq = new Map<number, Record<string, SqlStorageValue>>();
  for (const seqs of inChunks([...new Set(due.map((d) => d.seq))]))
    for (const row of sql.exec(
      `SELECT seq, delivery_id, kind, subject, received_at, headers, body, envelope FROM deliveries WHERE seq IN (${placeholders(seqs)})`,
      ...seqs,
    ))
      bySeq.set(row.seq as number, row);
  const out = new Map<string, { rows: DueHandoff[]; items: HandoffItem[] }>();
  for (const d of due) {
    const r = bySeq.get(d.seq)!;
    const group = out.get(d.targetId) ?? { rows: [], items: [] };
    group.rows.push(d);
    const item = handoffItem(source, r, { body: new Uint8Array(r.body as ArrayBuffer), envelope: r.envelope as string }, d.unfiltered);
    group.items.push(d.enrich !== null && decorate ? decorate(item, d) : item);
    out.set(d.targetId, group);
  }
  return out;
}

/** The hand-off item of a stored delivery row, with its payload (the row's own, or the archive's once retention pruned it). */
export function handoffItem(
  source: string,
  r: Record<string, SqlStorageValue>,
  payload: { body: Uint8Array; envelope: string },
  unfiltered = false,
): HandoffItem {
  return {
    source,
    deliveryId: r.delivery_id as string,
    kind: r.kind as string,
    subject: r.subject as string | null,
    receivedAt: r.received_at as number,
    envelope: payload.envelope,
    body: payload.body,
    headers: forwardableHeaders(JSON.parse(r.headers as string) as Record<string, string>),
    ...(unfiltered && { unfiltered: true }),
  };
}

/**
 * Marks handed-off rows (all of one target) handed, one statement per 98 rows. Rows another hand-off
 * marked meanwhile (the alarm and a hand-off after a commit may take the same due rows) are left as they are.
 */
export function markHanded(sql: SqlStorage, rows: readonly DueHandoff[], at: number): void {
  if (rows.length === 0) return;
  for (const ids of inChunks(
    rows.map((r) => r.deliveryId),
    2,
  ))
    sql.exec(
      `UPDATE handoffs SET handed_at = ?, tries = tries + 1, last_error = NULL WHERE target_id = ? AND handed_at IS NULL AND delivery_id IN (${placeholders(ids)})`,
      at,
      rows[0]!.targetId,
      ...ids,
    );
}

/** Schedules failed rows again with backoff and records why. */
export function markFailed(sql: SqlStorage, rows: readonly DueHandoff[], error: string, now: number, random: () => number): void {
  for (const r of rows) {
    const tries = r.tries + 1;
    const delay = Math.max(HANDOFF_RETRY.baseDelayMs, backoffDelayMs(HANDOFF_RETRY, tries, random));
    sql.exec(
      "UPDATE handoffs SET tries = ?, next_at = ?, last_error = ? WHERE delivery_id = ? AND target_id = ?",
      tries,
      now + delay,
      error.slice(0, 500),
      r.deliveryId,
      r.targetId,
    );
  }
}

/** When the earliest pending hand-off is due, or null when none waits (rows held at HOLD_AT are not due until made due). */
export function nextHandoffAt(sql: SqlStorage): number | null {
  return sql.exec<{ at: number | null }>("SELECT MIN(next_at) AS at FROM handoffs WHERE handed_at IS NULL AND next_at < ?", HOLD_AT).one().at;
}

/**
 * The CentrePoint headers a raw-format target receives: `x-actigraph-*` as recorded, without the
 * hook secret and without the body signature (never forwarded: a raw target that verifies
 * CentrePoint signatures gets a fresh one made with its own key, `centrepointSigning`).
 */
export function forwardableHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).filter(([name]) => name.startsWith("x-actigraph-") && name !== HEADER.hookSecret && name !== HEADER.signature),
  );
}
