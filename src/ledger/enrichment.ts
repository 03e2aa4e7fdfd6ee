/**
 * The ledger's pull-side rows (docs/pull.md), as plain functions over its SqlStorage: the
 * enrichment stored beside a record (never changing it), the hand-offs that wait for it, and the
 * download audit log of relay file links. The ledger class only wraps these in RPC methods.
 */
import { ENRICH_FACTS, type TargetConfig } from "../config/schemas";
import { bumpCounter, readCounters } from "../lib/counters";
import { log } from "../lib/log";
import { inChunks, placeholders } from "../lib/sql";
import type { HandoffItem } from "../outbox/types";
import { enrichmentFor, type ComposeContext, type TargetPlan, withEnrichment } from "../pull/compose";
import { allFound, envelopeData, keysOf, type StoredEnrichment } from "../pull/facts";
import { planPull, PULL_HANDOFF, type PullSpec } from "../pull/plan";
import type { DueHandoff } from "./handoff";
import { HOLD_AT } from "./types";

/** Download audit rows (one per link and outcome) kept per source; past it the least recently used go, counted. */
export const DOWNLOAD_LOG_CAP = 100_000;
/** Counter of download rows the bound removed. */
export const DOWNLOADS_DROPPED = "downloads:dropped";

/** The enrichment of a delivery as stored, and whether an operator released its held hand-offs. */
export interface EnrichmentRecord {
  stored: StoredEnrichment | null;
  releasedAt: number | null;
}

/** A target's hand-off that waits (or waited) for the enrichment. */
export interface EnrichingHandoff {
  targetId: string;
  facts: TargetPlan["facts"];
  /** When it goes out without the enrichment (epoch ms); null: held until the enrichment succeeds or an operator releases it. */
  deadlineAt: number | null;
  handedAt: number | null;
}

/** One download through a relay link (what a request writes). */
export interface DownloadEntry {
  at: number;
  targetId: string;
  fileId: string;
  deliveryId: string | null;
  clientIp: string | null;
  outcome: string;
}

/** An audit row: the downloads of one link (target and file) with one outcome; `at` and `clientIp` are the latest's. */
export interface DownloadRow extends DownloadEntry {
  id: number;
  firstAt: number;
  firstIp: string | null;
  count: number;
}

/** The pull-side counts of a ledger (overview and metrics). */
export interface PullLedgerStats {
  /** Hand-offs held until enrichment succeeds or an operator releases them. */
  held: number;
  /** Hand-offs waiting for enrichment before their deadline. */
  waiting: number;
  /** Downloads through relay links, per target, since the ledger began. */
  downloads: Record<string, number>;
}

/** Stores a delivery's enrichment (the latest attempt's) and makes due every waiting hand-off it completes; returns how many. */
export function storeEnrichment(sql: SqlStorage, deliveryId: string, stored: StoredEnrichment, now: number): number {
  sql.exec(
    `INSERT INTO enrichments (delivery_id, result, settled, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (delivery_id) DO UPDATE SET result = excluded.result, settled = excluded.settled, updated_at = excluded.updated_at`,
    deliveryId,
    JSON.stringify(stored),
    stored.settled ? 1 : 0,
    now,
  );
  let ready = 0;
  for (const row of waitingRows(sql, deliveryId, now)) {
    // A target goes out once it has every fact it wants; one that does not hold goes out when nothing more will come.
    const held = row.next_at >= HOLD_AT;
    if (allFound(row.plan.facts, stored.found) || (stored.settled && !held)) {
      sql.exec("UPDATE handoffs SET next_at = ? WHERE delivery_id = ? AND target_id = ?", now, deliveryId, row.target_id);
      ready++;
    }
  }
  return ready;
}

/** Makes every waiting hand-off of a delivery due now, enrichment or not (the operator's "release"); returns how many. */
export function releaseEnrichment(sql: SqlStorage, deliveryId: string, now: number): number {
  const rows = waitingRows(sql, deliveryId, now);
  if (rows.length === 0) return 0;
  sql.exec(
    `INSERT INTO enrichments (delivery_id, result, settled, released_at, updated_at) VALUES (?, 'null', 0, ?, ?)
     ON CONFLICT (delivery_id) DO UPDATE SET released_at = excluded.released_at`,
    deliveryId,
    now,
    now,
  );
  for (const row of rows) sql.exec("UPDATE handoffs SET next_at = ? WHERE delivery_id = ? AND target_id = ?", now, deliveryId, row.target_id);
  return rows.length;
}

/** A delivery's stored enrichment, or null when none was ever stored. */
export function readEnrichment(sql: SqlStorage, deliveryId: string): EnrichmentRecord | null {
  const row = sql
    .exec<{ result: string; released_at: number | null }>("SELECT result, released_at FROM enrichments WHERE delivery_id = ?", deliveryId)
    .toArray()[0];
  return row ? { stored: JSON.parse(row.result) as StoredEnrichment | null, releasedAt: row.released_at } : null;
}

/** The hand-offs of a delivery that have a target's enrichment plan. */
export function enrichingHandoffs(sql: SqlStorage, deliveryId: string): EnrichingHandoff[] {
  return sql
    .exec<{ target_id: string; enrich: string; next_at: number; handed_at: number | null }>(
      "SELECT target_id, enrich, next_at, handed_at FROM handoffs WHERE delivery_id = ? AND enrich IS NOT NULL AND target_id != ? ORDER BY target_id",
      deliveryId,
      PULL_HANDOFF,
    )
    .toArray()
    .map((r) => ({
      targetId: r.target_id,
      facts: (JSON.parse(r.enrich) as TargetPlan).facts,
      deadlineAt: r.next_at >= HOLD_AT ? null : r.next_at,
      handedAt: r.handed_at,
    }));
}

/** The item of a hand-off row with a pull plan: the Puller's job, or a target's envelope with `data.enrichment` composed now. */
export function decorateItem(sql: SqlStorage, ctx: Omit<ComposeContext, "target" | "source">) {
  return (item: HandoffItem, row: DueHandoff): HandoffItem & { pull?: PullSpec } => {
    if (row.targetId === PULL_HANDOFF) return { ...item, pull: JSON.parse(row.enrich!) as PullSpec };
    const plan = JSON.parse(row.enrich!) as TargetPlan;
    if (plan.facts.includes("datafiles") && (ctx.linkKey === null || ctx.publicUrl === ""))
      log("warn", ctx.linkKey === null ? "file links are off: FILE_LINK_SECRET is not set" : "file links are relative: RELAY_PUBLIC_URL is not set", {
        source: item.source,
        target: row.targetId,
        deliveryId: row.deliveryId,
      });
    const stored = readEnrichment(sql, row.deliveryId)?.stored ?? null;
    const enrichment = enrichmentFor(plan, stored, { ...ctx, source: item.source, target: row.targetId });
    return { ...item, envelope: withEnrichment(item.envelope, enrichment) };
  };
}

/**
 * Counts a download in its link's audit row (one row per target, file and outcome: a new row for
 * the first, then the count, the latest time and address). A new row past `cap` rows drops the
 * least recently used (counted in DOWNLOADS_DROPPED), so repeating one link never pushes out another
 * link's row. Every redirect is counted per target too. Writes one row (two when it drops).
 */
export function recordDownload(sql: SqlStorage, entry: DownloadEntry, cap = DOWNLOAD_LOG_CAP): void {
  const row = sql
    .exec<{ id: number; count: number }>(
      `INSERT INTO downloads (at, first_at, target_id, file_id, delivery_id, client_ip, first_ip, outcome, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
       ON CONFLICT (target_id, file_id, outcome) DO UPDATE SET at = MAX(at, excluded.at), client_ip = excluded.client_ip, count = count + 1
       RETURNING id, count`,
      entry.at,
      entry.at,
      entry.targetId,
      entry.fileId,
      entry.deliveryId,
      entry.clientIp,
      entry.clientIp,
      entry.outcome.slice(0, 200),
    )
    .one();
  if (row.count === 1 && row.id > cap) {
    const excess = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM downloads").one().n - cap;
    if (excess > 0) {
      const removed = sql.exec("DELETE FROM downloads WHERE id IN (SELECT id FROM downloads ORDER BY at LIMIT ?)", excess).rowsWritten;
      if (removed > 0) bump(sql, DOWNLOADS_DROPPED, removed);
    }
  }
  if (entry.outcome === "redirected") bump(sql, `downloads:${entry.targetId}`, 1);
}

/** Download audit rows, latest download first: of one delivery, or of the whole source. */
export function listDownloads(sql: SqlStorage, filter: { deliveryId?: string; limit: number }): DownloadRow[] {
  const limit = Math.max(1, Math.min(500, Math.floor(filter.limit) || 50));
  const rows =
    filter.deliveryId === undefined
      ? sql.exec("SELECT * FROM downloads ORDER BY at DESC, id DESC LIMIT ?", limit)
      : sql.exec("SELECT * FROM downloads WHERE delivery_id = ? ORDER BY at DESC, id DESC LIMIT ?", filter.deliveryId, limit);
  return rows.toArray().map((r) => ({
    id: r.id as number,
    at: r.at as number,
    firstAt: r.first_at as number,
    count: r.count as number,
    targetId: r.target_id as string,
    fileId: r.file_id as string,
    deliveryId: r.delivery_id as string | null,
    clientIp: r.client_ip as string | null,
    firstIp: r.first_ip as string | null,
    outcome: r.outcome as string,
  }));
}

/** A delivery's pull side: its stored enrichment, the targets that wait (or waited) for it, its latest file downloads. */
export function pullView(sql: SqlStorage, deliveryId: string): { enrichment: EnrichmentRecord | null; handoffs: EnrichingHandoff[]; downloads: DownloadRow[] } {
  return {
    enrichment: readEnrichment(sql, deliveryId),
    handoffs: enrichingHandoffs(sql, deliveryId),
    downloads: listDownloads(sql, { deliveryId, limit: 100 }),
  };
}

/** Held and waiting enriching hand-offs (pending rows only), and the download counters. */
export function pullLedgerStats(sql: SqlStorage): PullLedgerStats {
  const c = sql
    .exec<{ held: number; waiting: number }>(
      `SELECT COALESCE(SUM(next_at >= ?), 0) AS held, COALESCE(SUM(next_at < ?), 0) AS waiting FROM handoffs
       WHERE handed_at IS NULL AND enrich IS NOT NULL AND target_id != ?`,
      HOLD_AT,
      HOLD_AT,
      PULL_HANDOFF,
    )
    .one();
  const downloads = [...readCounters(sql, "downloads:")].filter(([name]) => `downloads:${name}` !== DOWNLOADS_DROPPED);
  return { held: c.held, waiting: c.waiting, downloads: Object.fromEntries(downloads) };
}

/** Hand-off rows of a delivery that still wait for its enrichment (not handed, not due yet). */
function waitingRows(sql: SqlStorage, deliveryId: string, now: number): { target_id: string; next_at: number; plan: TargetPlan }[] {
  return sql
    .exec<{ target_id: string; next_at: number; enrich: string }>(
      "SELECT target_id, next_at, enrich FROM handoffs WHERE delivery_id = ? AND handed_at IS NULL AND enrich IS NOT NULL AND target_id != ? AND next_at > ?",
      deliveryId,
      PULL_HANDOFF,
      now,
    )
    .toArray()
    .map((r) => ({ target_id: r.target_id, next_at: r.next_at, plan: JSON.parse(r.enrich) as TargetPlan }));
}

function bump(sql: SqlStorage, name: string, by: number): void {
  bumpCounter(sql, name, by);
}

/**
 * Plans, for `target` (valid now; its document was invalid when these deliveries arrived), the
 * hand-offs of `deliveryIds` that were planned unfiltered: the target's enrichment plan
 * (src/pull/plan.ts) and, when it wants facts, the Puller's job (a job the delivery already has gets
 * the new facts). Each row is handed off again (its item replaces the outbox's held row), due at its
 * plan's time, or now when the stored enrichment already has every fact it wants. Idempotent: a row
 * is planned once. Returns the ids with no hand-off row for the target (retention removed them).
 */
export function planReleased(sql: SqlStorage, target: { id: string; config: TargetConfig }, deliveryIds: readonly string[], now: number): string[] {
  const rows: { delivery_id: string; kind: string; envelope: string; unfiltered: number; handed_at: number | null }[] = [];
  for (const ids of inChunks(deliveryIds, 1))
    rows.push(
      ...sql
        .exec<{ delivery_id: string; kind: string; envelope: string; unfiltered: number; handed_at: number | null }>(
          `SELECT h.delivery_id, d.kind, d.envelope, h.unfiltered, h.handed_at FROM handoffs h JOIN deliveries d ON d.delivery_id = h.delivery_id
           WHERE h.target_id = ? AND h.delivery_id IN (${placeholders(ids)})`,
          target.id,
          ...ids,
        )
        .toArray(),
    );
  for (const r of rows.filter((x) => x.unfiltered === 1)) {
    const keys = keysOf(r.kind, envelopeData(r.envelope));
    const pull = planPull({ targets: [{ ...target, valid: true }], wanted: [target.id], keys, receivedAt: now, autoRequest: null });
    const plan = Object.hasOwn(pull.plans, target.id) ? pull.plans[target.id] : undefined;
    const stored = readEnrichment(sql, r.delivery_id)?.stored ?? null;
    const ready = !plan || (stored !== null && allFound((JSON.parse(plan.enrich) as TargetPlan).facts, stored.found));
    sql.exec(
      "UPDATE handoffs SET unfiltered = 0, handed_at = NULL, tries = 0, last_error = NULL, next_at = ?, enrich = ? WHERE delivery_id = ? AND target_id = ?",
      ready ? now : plan.nextAt,
      plan?.enrich ?? null,
      r.delivery_id,
      target.id,
    );
    const job = Object.hasOwn(pull.plans, PULL_HANDOFF) ? pull.plans[PULL_HANDOFF] : undefined;
    if (job && !ready) addPullFacts(sql, r.delivery_id, JSON.parse(job.enrich) as PullSpec, now);
  }
  const found = new Set(rows.map((r) => r.delivery_id));
  return deliveryIds.filter((id) => !found.has(id));
}

/** Gives a delivery's Puller job `spec`'s facts (a new `@pull` row, or the existing one widened and handed off again); returns 1 when a handed row was re-opened. */
function addPullFacts(sql: SqlStorage, deliveryId: string, spec: PullSpec, now: number): number {
  const row = sql
    .exec<{ enrich: string; handed_at: number | null }>(
      "SELECT enrich, handed_at FROM handoffs WHERE delivery_id = ? AND target_id = ?",
      deliveryId,
      PULL_HANDOFF,
    )
    .toArray()[0];
  if (!row) {
    sql.exec(
      "INSERT INTO handoffs (delivery_id, target_id, planned_at, next_at, unfiltered, enrich) VALUES (?, ?, ?, ?, 0, ?)",
      deliveryId,
      PULL_HANDOFF,
      now,
      now,
      JSON.stringify(spec),
    );
    return 1;
  }
  const old = JSON.parse(row.enrich) as PullSpec;
  const facts = ENRICH_FACTS.filter((f) => old.facts.includes(f) || spec.facts.includes(f));
  if (facts.length === old.facts.length && spec.until <= old.until) return 0;
  // A raw-data request already passed on is not asked again.
  const widened: PullSpec = { facts, until: Math.max(old.until, spec.until), autoRequest: row.handed_at === null ? old.autoRequest : null };
  sql.exec(
    "UPDATE handoffs SET enrich = ?, handed_at = NULL, tries = 0, next_at = ? WHERE delivery_id = ? AND target_id = ?",
    JSON.stringify(widened),
    now,
    deliveryId,
    PULL_HANDOFF,
  );
  return row.handed_at === null ? 0 : 1;
}
