import { sha256Hex } from "./crypto";
import { DAY_MS } from "./time";

/**
 * Writing a hash chain to R2 in write-once segments, what the ledger's archive (ledger/archive.ts)
 * and the audit trail's (audit/archive.ts) share: the closing rule of a segment and the write-once put.
 *
 * Closing rule. A segment starts at the first record not archived yet and takes the following
 * records in seq order while they were written on the same UTC day as its first one, up to a
 * record and a byte bound. It is closed when it reached a bound, when a record of another day
 * follows it, or when its UTC day ended more than DAY_END_GRACE_MS ago (a request that took its time
 * before midnight has committed by then). Until then it is the open tail and is not archived.
 */

/** Bounds of one segment: records, and bytes of NDJSON (estimated while planning). */
export interface SegmentLimits {
  records: number;
  bytes: number;
}

/** An open tail closes this long after the end of its UTC day. */
export const DAY_END_GRACE_MS = 5 * 60_000;
/** While records wait for their segment to close, the job looks again at least this often. */
export const ARCHIVE_EVERY_MS = 3_600_000;

/** A record as the closing rule sees it: its seq, its time (epoch ms) and the estimated bytes of its line. */
export interface SegmentCandidate {
  seq: number;
  at: number;
  bytes: number;
}

/** How the segment starting at the first candidate closes. */
export type SegmentCut = { firstSeq: number; lastSeq: number; closedBy: "records" | "bytes" | "next-day" | "day-end" } | { open: true; closesAt: number };

/**
 * The closing rule over the records from the segment's first one on, in seq order (at most
 * `limits.records + 1` of them: one more than a segment holds tells a full one apart); null when none waits.
 */
export function cutSegment(rows: readonly SegmentCandidate[], now: number, limits: SegmentLimits): SegmentCut | null {
  const first = rows[0];
  if (!first) return null;
  const dayStart = utcDayStart(first.at);
  const dayEnd = dayStart + DAY_MS;
  let last = first.seq;
  let bytes = 0;
  for (const [i, r] of rows.entries()) {
    if (i === limits.records) return { firstSeq: first.seq, lastSeq: last, closedBy: "records" };
    if (r.at < dayStart || r.at >= dayEnd) return { firstSeq: first.seq, lastSeq: last, closedBy: "next-day" };
    if (i > 0 && bytes + r.bytes > limits.bytes) return { firstSeq: first.seq, lastSeq: last, closedBy: "bytes" };
    bytes += r.bytes;
    last = r.seq;
  }
  if (rows.length === limits.records) return { firstSeq: first.seq, lastSeq: last, closedBy: "records" };
  if (now >= dayEnd + DAY_END_GRACE_MS) return { firstSeq: first.seq, lastSeq: last, closedBy: "day-end" };
  return { open: true, closesAt: dayEnd + DAY_END_GRACE_MS };
}

/** Start of the UTC day of `ms`. */
export function utcDayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/** The next full hour after `now`. */
export function nextHour(now: number): number {
  return (Math.floor(now / ARCHIVE_EVERY_MS) + 1) * ARCHIVE_EVERY_MS;
}

/**
 * Writes an object only where none is (`onlyIf` etagDoesNotMatch "*"). Null when it is there now
 * with exactly these bytes (written now, or by an earlier try); otherwise why not. Never overwrites.
 */
export async function putOnce(bucket: R2Bucket, key: string, bytes: Uint8Array, sha256: string, contentType: string): Promise<string | null> {
  const put = await bucket.put(key, bytes, { onlyIf: { etagDoesNotMatch: "*" }, sha256, httpMetadata: { contentType } });
  if (put !== null) return null;
  const existing = await bucket.get(key);
  if (existing === null) return `${key} could neither be written nor read; archiving stopped`;
  const theirs = sha256Hex(new Uint8Array(await existing.arrayBuffer()));
  return theirs === sha256 ? null : `${key} already exists in the archive with other content; it was not overwritten and archiving stopped`;
}

/** The parts as one byte array. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
