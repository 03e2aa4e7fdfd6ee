import { takeByBytes } from "../lib/batch";
import { rowToArchiveRecord } from "./archive";
import { recordLine } from "./archive-format";

/**
 * The export of a ledger's records as NDJSON (the archive's record lines), a contiguous seq range
 * read in pages bounded by rows and bytes. Plain functions over the ledger's SqlStorage.
 */

/** What one page of an export carries at most (rows, and bytes of stored payload). */
export const EXPORT_PAGE = { rows: 500, bytes: 1024 * 1024 };

/**
 * The records an export of received times [from, to) covers, as a contiguous seq range: from the
 * first record received at or after `from` to the last received before `to` (either bound
 * optional); null when none. Never before the chain's anchor `anchor` (the seq of the last record
 * retention removed, 0 when none), returned as `prunedThrough`.
 */
export function exportRange(sql: SqlStorage, anchor: number, from?: number, to?: number): { firstSeq: number; lastSeq: number; prunedThrough: number } | null {
  const first =
    from === undefined
      ? sql.exec<{ seq: number | null }>("SELECT MIN(seq) AS seq FROM deliveries WHERE seq > ?", anchor).one().seq
      : (sql.exec<{ seq: number }>("SELECT seq FROM deliveries WHERE received_at >= ? AND seq > ? ORDER BY received_at, seq LIMIT 1", from, anchor).toArray()[0]
          ?.seq ?? null);
  const last =
    to === undefined
      ? sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM deliveries").one().seq
      : (sql
          .exec<{ seq: number }>("SELECT seq FROM deliveries WHERE received_at < ? AND seq > ? ORDER BY received_at DESC, seq DESC LIMIT 1", to, anchor)
          .toArray()[0]?.seq ?? null);
  return first === null || last === null || first > last ? null : { firstSeq: first, lastSeq: last, prunedThrough: anchor };
}

/** NDJSON of records `firstSeq`.. (at most `lastSeq`), one page within `limits`; `next` continues, null at the end. */
export function exportPage(sql: SqlStorage, firstSeq: number, lastSeq: number, limits: { rows: number; bytes: number }): { text: string; next: number | null } {
  const sizes = sql
    .exec<{ seq: number; size: number }>(
      "SELECT seq, length(body) + length(envelope) + length(headers) AS size FROM deliveries WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
      firstSeq,
      lastSeq,
      limits.rows,
    )
    .toArray();
  if (sizes.length === 0) return { text: "", next: null };
  const last = takeByBytes(sizes, (r) => r.size, limits.bytes).at(-1)!.seq;
  let text = "";
  for (const r of sql.exec("SELECT * FROM deliveries WHERE seq >= ? AND seq <= ? ORDER BY seq", firstSeq, last)) text += recordLine(rowToArchiveRecord(r));
  return { text, next: last < lastSeq ? last + 1 : null };
}
