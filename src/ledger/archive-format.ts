// Loaded by the Worker and by Node (scripts/verify-archive.ts): explicit extensions, no Workers types.
import { type ChainFields, checkLink, GENESIS } from "./chain.ts";
import { fromBase64, sha256Hex } from "../lib/crypto.ts";

/**
 * The archive and export format, pure: one NDJSON line per ledger record with everything needed
 * to re-verify it offline (docs/storage.md, Archive), a manifest per archived segment, and the
 * checks the offline verifier runs. The Worker writes with it (archive.ts, the export route);
 * `npm run verify-archive` reads with it.
 */

/** Names the format in every manifest. */
export const ARCHIVE_FORMAT = "centrepoint-edge-relay.archive/1";

/**
 * One record, as a line of a segment or of an export: every field the chain covers (times epoch
 * ms and headers the stored JSON text, exactly as hashed), and what is needed to check it.
 */
export interface ArchiveRecord extends ChainFields {
  /** The raw body, base64; null when retention pruned it (exports only: archived segments always have it). */
  body: string | null;
  /** The CloudEvents envelope, as stored; null when pruned. */
  envelope: string | null;
  chainVersion: number;
  recordHash: string;
  /** When retention pruned body and envelope, or null. */
  bodyPrunedAt: number | null;
}

/** A segment's manifest: which records, how they chain to the previous segment, and the file's digest. */
export interface SegmentManifest {
  format: typeof ARCHIVE_FORMAT;
  source: string;
  /** R2 key of the segment file (the manifest's own key ends in .manifest.json instead of .ndjson). */
  segment: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
  firstReceivedAt: string;
  lastReceivedAt: string;
  /** record_hash of record firstSeq − 1 (GENESIS for record 1): the previous segment's headHash. */
  prevHeadHash: string;
  /** record_hash of record lastSeq. */
  headHash: string;
  /** SHA-256 of the segment file's bytes, and their number. */
  sha256: string;
  bytes: number;
  chainVersions: number[];
  /** Why the segment closed: its record or byte bound, a record of the next UTC day, or the end of its UTC day. */
  closedBy: "records" | "bytes" | "next-day" | "day-end";
  createdAt: string;
}

/** R2 keys of a segment and its manifest: `<source>/segments/<first seq>-<last seq>` with 12-digit seqs, so keys sort by seq. */
export function segmentKeys(source: string, firstSeq: number, lastSeq: number): { segment: string; manifest: string } {
  const base = `${source}/segments/${String(firstSeq).padStart(12, "0")}-${String(lastSeq).padStart(12, "0")}`;
  return { segment: `${base}.ndjson`, manifest: `${base}.manifest.json` };
}

/** A record as one NDJSON line (with its newline). */
export function recordLine(r: ArchiveRecord): string {
  return `${JSON.stringify(r)}\n`;
}

/** A manifest as stored (pretty JSON, with a newline). */
export function manifestText(m: SegmentManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

const str = (v: unknown) => typeof v === "string";
const strOrNull = (v: unknown) => v === null || typeof v === "string";
const int = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v);
const RECORD_FIELDS: Record<keyof ArchiveRecord, (v: unknown) => boolean> = {
  seq: int,
  deliveryId: str,
  idDerived: (v) => typeof v === "boolean",
  event: strOrNull,
  kind: str,
  subject: strOrNull,
  attention: strOrNull,
  receivedAt: int,
  sourceIp: strOrNull,
  headers: str,
  body: strOrNull,
  bodySha256: str,
  envelope: strOrNull,
  envelopeSha256: str,
  provenance: str,
  sameBodyAs: strOrNull,
  chainVersion: int,
  prevHash: str,
  recordHash: str,
  bodyPrunedAt: (v) => v === null || int(v),
};

/** Parses one line; the error names the field that is wrong. */
export function parseRecordLine(line: string): { ok: true; value: ArchiveRecord } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, error: "the line is not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: "the line is not a JSON object" };
  for (const [field, valid] of Object.entries(RECORD_FIELDS)) {
    if (!valid((value as Record<string, unknown>)[field])) return { ok: false, error: `field ${field} is missing or has the wrong type` };
  }
  return { ok: true, value: value as ArchiveRecord };
}

/**
 * Why a record does not verify after `expected` (the previous record's seq + 1 and hash), or
 * null: its link, its record hash under its chain version, and the digests of the body and the
 * envelope it carries (a pruned one is skipped: its digest stays in the link).
 */
export function checkRecord(r: ArchiveRecord, expected: { seq: number; prevHash: string }): string | null {
  let bodyDigest: string | null = null;
  if (r.body !== null) {
    const bytes = fromBase64(r.body);
    if (bytes === null) return "body is not valid base64";
    bodyDigest = sha256Hex(bytes);
  }
  return checkLink(
    {
      version: r.chainVersion,
      recordHash: r.recordHash,
      fields: r,
      bodyDigest,
      envelopeDigest: r.envelope === null ? null : sha256Hex(r.envelope),
    },
    expected,
  );
}

/** Where a verification stopped: the first broken record (its seq and delivery id when the line could be read) and why. */
export interface Broken {
  seq: number | null;
  deliveryId: string | null;
  /** Where: a file name and line number. */
  at: string;
  reason: string;
}

/** A chain checked so far: how many records, how many had a pruned body, and the last one's seq and hash. */
export interface Verified {
  records: number;
  prunedBodies: number;
  last: { seq: number; hash: string };
  chainVersions: Set<number>;
}

/**
 * A verifier fed one line at a time (so a large export streams through it): each line is checked
 * against the chain so far. `after` is the previous record's seq and hash; null takes the first
 * line's own link as the start (an export of a range). `push` answers the first broken record.
 */
export function lineVerifier(after: { seq: number; hash: string } | null) {
  const verified: Verified = { records: 0, prunedBodies: 0, last: after ?? { seq: 0, hash: GENESIS }, chainVersions: new Set() };
  let prev = after;
  return {
    verified,
    push(line: string, at: string): Broken | null {
      const parsed = parseRecordLine(line);
      if (!parsed.ok) return { seq: prev ? prev.seq + 1 : null, deliveryId: null, at, reason: parsed.error };
      const r = parsed.value;
      const reason = checkRecord(r, prev ? { seq: prev.seq + 1, prevHash: prev.hash } : { seq: r.seq, prevHash: r.prevHash });
      if (reason !== null) return { seq: r.seq, deliveryId: r.deliveryId, at, reason };
      prev = { seq: r.seq, hash: r.recordHash };
      verified.records++;
      if (r.body === null) verified.prunedBodies++;
      verified.chainVersions.add(r.chainVersion);
      verified.last = prev;
      return null;
    },
  };
}

/** Checks NDJSON text (a segment) against the chain so far; `where` names the file in the answer. */
export function verifyLines(
  text: string,
  after: { seq: number; hash: string } | null,
  where: string,
): { ok: true; verified: Verified } | { ok: false; broken: Broken } {
  const verifier = lineVerifier(after);
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const [i, line] of lines.entries()) {
    const broken = verifier.push(line, `${where} line ${i + 1}`);
    if (broken) return { ok: false, broken };
  }
  return { ok: true, verified: verifier.verified };
}
