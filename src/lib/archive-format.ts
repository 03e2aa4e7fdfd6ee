// Loaded by the Worker and by Node (scripts/verify-archive.ts): explicit extensions, no Workers types.

/**
 * What every write-once archive of a hash chain shares (the ledger's, ledger/archive-format.ts, and
 * the audit trail's, audit/format.ts): a segment is NDJSON, one record per line; its manifest names
 * the records it holds, how they chain to the previous segment, and the file's digest; a verifier is
 * fed one line at a time and names the first broken record.
 */

/** A segment's manifest: which records, how they chain to the previous segment, and the file's digest. */
export interface SegmentManifest<Format extends string = string> {
  /** Names the line format (the ledger's or the audit trail's). */
  format: Format;
  /** The chain: a source id, or `audit` for the audit trail. */
  source: string;
  /** R2 key of the segment file (the manifest's own key ends in .manifest.json instead of .ndjson). */
  segment: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** Time of the first and last record (received, or written for an audit entry). */
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

/** R2 keys of a segment and its manifest: `<prefix>/segments/<first seq>-<last seq>` with 12-digit seqs, so keys sort by seq. */
export function segmentKeys(prefix: string, firstSeq: number, lastSeq: number): { segment: string; manifest: string } {
  const base = `${prefix}/segments/${String(firstSeq).padStart(12, "0")}-${String(lastSeq).padStart(12, "0")}`;
  return { segment: `${base}.ndjson`, manifest: `${base}.manifest.json` };
}

/** A manifest as stored (pretty JSON, with a newline). */
export function manifestText(m: SegmentManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

/** Where a verification stopped: the first broken record (its seq and delivery id when the line could be read) and why. */
export interface Broken {
  seq: number | null;
  deliveryId: string | null;
  /** An audit entry's action and actor, when the broken line is one. */
  entry?: string | null;
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

/** Checks lines one at a time against the chain so far; `push` answers the first broken record. */
export interface LineVerifier {
  verified: Verified;
  push(line: string, at: string): Broken | null;
}

/** Checks NDJSON text (a segment) with `verifier`; `where` names the file in the answer. */
export function verifyText(text: string, verifier: LineVerifier, where: string): { ok: true; verified: Verified } | { ok: false; broken: Broken } {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const [i, line] of lines.entries()) {
    const broken = verifier.push(line, `${where} line ${i + 1}`);
    if (broken) return { ok: false, broken };
  }
  return { ok: true, verified: verifier.verified };
}

/** Per field of a line, whether its value is valid. */
export type LineFields = Record<string, (v: unknown) => boolean>;

/** Parses one NDJSON line of a chain and checks every field; the error names the first field that is wrong. */
export function parseChainLine<T>(line: string, fields: LineFields): { ok: true; value: T } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, error: "the line is not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: "the line is not a JSON object" };
  for (const [field, valid] of Object.entries(fields)) {
    if (!valid((value as Record<string, unknown>)[field])) return { ok: false, error: `field ${field} is missing or has the wrong type` };
  }
  return { ok: true, value: value as T };
}
