// Loaded by the Worker and by Node (scripts/verify-archive.ts): explicit extensions, no Workers types.
import { type ChainFields, checkLink, GENESIS } from "./chain.ts";
import { fromBase64, sha256Hex } from "../lib/crypto.ts";
import { type Broken, type LineVerifier, parseChainLine, type SegmentManifest as BaseManifest, type Verified, verifyText } from "../lib/archive-format.ts";

export { type Broken, manifestText, segmentKeys, type Verified } from "../lib/archive-format.ts";

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

/** A ledger segment's manifest (lib/archive-format.ts). */
export type SegmentManifest = BaseManifest<typeof ARCHIVE_FORMAT>;

/** A record as one NDJSON line (with its newline). */
export function recordLine(r: ArchiveRecord): string {
  return `${JSON.stringify(r)}\n`;
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
  return parseChainLine<ArchiveRecord>(line, RECORD_FIELDS);
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

/**
 * A verifier fed one line at a time (so a large export streams through it): each line is checked
 * against the chain so far. `after` is the previous record's seq and hash; null takes the first
 * line's own link as the start (an export of a range). `push` answers the first broken record.
 */
export function lineVerifier(after: { seq: number; hash: string } | null): LineVerifier {
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
  return verifyText(text, lineVerifier(after), where);
}
