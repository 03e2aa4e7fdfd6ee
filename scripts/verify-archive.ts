/**
 * The offline verifier of a ledger's or the audit trail's archive or export: `npm run verify-archive -- <path>`.
 *
 * - A directory: every `*.manifest.json` under it (the R2 prefix `<source>/segments/`, copied
 *   down), each with its segment file beside it. Checks every record of every segment (its link,
 *   its record hash, its body's and envelope's digests), every segment file against its
 *   manifest's SHA-256 and size, and the manifest chain (each segment starts where the previous one
 *   ended, with that one's head hash).
 *   The audit trail's segments (R2 prefix `_audit/segments/`, manifest format
 *   `centrepoint-edge-relay.audit-archive/1`) are checked the same way, entry by entry.
 * - A file: one NDJSON export (`GET /admin/sources/:id/export`, or the trail's `GET /admin/audit/export`,
 *   told apart by its first line). Checks the chain within it; its first record's prev_hash is the
 *   anchor (compare it with the record before the range).
 *
 * Prints `OK: ...` and exits 0, or names the first broken record (its seq and delivery id) and
 * exits 1 (an audit entry is named by its seq, action and actor); 2 for a usage error. Uses only the
 * chain code the relay itself uses (src/lib/chain.ts through src/ledger/archive-format.ts and
 * src/audit/format.ts) and Node's own modules.
 */
import { createReadStream, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { createInterface } from "node:readline";
import { AUDIT_ARCHIVE_FORMAT, auditLineVerifier, isAuditLine } from "../src/audit/format.ts";
import { ARCHIVE_FORMAT, type Broken, lineVerifier } from "../src/ledger/archive-format.ts";
import { type LineVerifier, type SegmentManifest, verifyText } from "../src/lib/archive-format.ts";
import { GENESIS } from "../src/lib/chain.ts";
import { sha256Hex } from "../src/lib/crypto.ts";

/** What a verification found. */
export type Verdict = { ok: true; summary: string } | { ok: false; broken: Broken };

/** Verifies a directory of segments and manifests, or one export file. */
export async function verifyPath(path: string): Promise<Verdict> {
  return statSync(path).isDirectory() ? verifyArchiveDir(path) : verifyExportFile(path);
}

/** Every manifest under `dir`, its segment, and the chain across them, in seq order. */
export function verifyArchiveDir(dir: string): Verdict {
  const files = listFiles(dir).filter((f) => f.endsWith(".manifest.json"));
  if (files.length === 0) return fail(null, null, dir, "no *.manifest.json files under this directory");
  const manifests: { file: string; m: SegmentManifest }[] = [];
  for (const file of files) {
    const m = readManifest(file);
    if (typeof m === "string") return fail(null, null, rel(dir, file), m);
    manifests.push({ file, m });
  }
  manifests.sort((a, b) => a.m.firstSeq - b.m.firstSeq);
  const first = manifests[0]!.m;
  let after = { seq: first.firstSeq - 1, hash: first.prevHeadHash };
  let records = 0;
  let bytes = 0;
  const versions = new Set<number>();
  for (const { file, m } of manifests) {
    const where = rel(dir, file);
    if (m.firstSeq !== after.seq + 1)
      return fail(after.seq + 1, null, where, `the manifest chain has a gap: the previous segment ends at seq ${after.seq}, this one starts at ${m.firstSeq}`);
    if (m.prevHeadHash !== after.hash)
      return fail(m.firstSeq, null, where, "the manifest chain is broken: prevHeadHash is not the previous segment's headHash");
    const segmentFile = join(dirname(file), basename(m.segment));
    let content: Buffer;
    try {
      content = readFileSync(segmentFile);
    } catch {
      return fail(m.firstSeq, null, where, `its segment file ${basename(m.segment)} is missing`);
    }
    if (m.format !== first.format) return fail(m.firstSeq, null, where, `the manifest's format ${m.format} is not the first one's (${first.format})`);
    const checked = verifyText(content.toString("utf8"), VERIFIERS[m.format]!(after), rel(dir, segmentFile));
    if (!checked.ok) return { ok: false, broken: checked.broken };
    const v = checked.verified;
    if (v.records !== m.count || v.last.seq !== m.lastSeq)
      return fail(
        v.last.seq + 1,
        null,
        rel(dir, segmentFile),
        `the segment holds ${v.records} records through seq ${v.last.seq}; its manifest says ${m.count} through ${m.lastSeq}`,
      );
    if (v.last.hash !== m.headHash) return fail(m.lastSeq, null, where, "headHash is not the record hash of the segment's last record");
    if (sha256Hex(content) !== m.sha256 || content.byteLength !== m.bytes)
      return fail(null, null, rel(dir, segmentFile), "the segment file does not match its manifest's SHA-256 and size (its records verify: it was rewritten)");
    for (const version of v.chainVersions) versions.add(version);
    after = v.last;
    records += v.records;
    bytes += content.byteLength;
  }
  const anchored =
    first.firstSeq === 1 && first.prevHeadHash === GENESIS
      ? "from the chain's start"
      : `anchored at prev hash ${first.prevHeadHash} (seq ${first.firstSeq - 1})`;
  return {
    ok: true,
    summary: `OK: ${manifests.length} segments, ${records} records (seq ${first.firstSeq}-${after.seq}, ${anchored}), ${bytes} bytes, chain versions ${[...versions].sort().join(", ")}; head hash ${after.hash}`,
  };
}

/** The line verifier of each manifest format. */
const VERIFIERS: Record<string, (after: { seq: number; hash: string } | null) => LineVerifier> = {
  [ARCHIVE_FORMAT]: lineVerifier,
  [AUDIT_ARCHIVE_FORMAT]: auditLineVerifier,
};

/** One NDJSON export, streamed line by line: a ledger's, or the audit trail's (told apart by its first line). */
export async function verifyExportFile(file: string): Promise<Verdict> {
  let verifier: LineVerifier | null = null;
  let audit = false;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  let firstSeq: number | null = null;
  let anchor: string | null = null;
  for await (const line of lines) {
    n++;
    if (line === "") continue;
    if (verifier === null) {
      audit = looksLikeAudit(line);
      verifier = audit ? auditLineVerifier(null) : lineVerifier(null);
    }
    const broken = verifier.push(line, `${basename(file)} line ${n}`);
    if (broken) return { ok: false, broken };
    if (firstSeq === null) {
      firstSeq = verifier.verified.last.seq;
      anchor = (JSON.parse(line) as { prevHash: string }).prevHash;
    }
  }
  if (verifier === null || verifier.verified.records === 0) return { ok: true, summary: "OK: the export is empty" };
  const v = verifier.verified;
  if (audit)
    return {
      ok: true,
      summary: `OK: ${v.records} audit entries (seq ${firstSeq}-${v.last.seq}), anchored at prev hash ${anchor} (the entry before seq ${firstSeq}); head hash ${v.last.hash}`,
    };
  const pruned = v.prunedBodies > 0 ? `; ${v.prunedBodies} records had their body pruned (links verified; the bodies are in the archive)` : "";
  return {
    ok: true,
    summary: `OK: ${v.records} records (seq ${firstSeq}-${v.last.seq}), anchored at prev hash ${anchor} (the record before seq ${firstSeq}), chain versions ${[...v.chainVersions].sort().join(", ")}${pruned}; head hash ${v.last.hash}`,
  };
}

/** One line for a verdict. */
export function describe(v: Verdict): string {
  if (v.ok) return v.summary;
  const { seq, deliveryId, entry, at, reason } = v.broken;
  const record =
    seq === null
      ? "BROKEN"
      : entry
        ? `BROKEN at audit entry seq ${seq} (${entry})`
        : `BROKEN at record seq ${seq}${deliveryId === null ? "" : ` (delivery ${deliveryId})`}`;
  return `${record}: ${reason} [${at}]`;
}

/** True when an export's first line is an audit entry. */
function looksLikeAudit(line: string): boolean {
  try {
    return isAuditLine(JSON.parse(line));
  } catch {
    return false;
  }
}

function readManifest(file: string): SegmentManifest | string {
  let m: Partial<SegmentManifest>;
  try {
    m = JSON.parse(readFileSync(file, "utf8")) as Partial<SegmentManifest>;
  } catch {
    return "the manifest is not JSON";
  }
  if (typeof m.format !== "string" || !(m.format in VERIFIERS)) return `the manifest's format is not ${ARCHIVE_FORMAT} or ${AUDIT_ARCHIVE_FORMAT}`;
  for (const field of ["firstSeq", "lastSeq", "count", "bytes"] as const) if (!Number.isSafeInteger(m[field])) return `the manifest's ${field} is missing`;
  for (const field of ["segment", "prevHeadHash", "headHash", "sha256"] as const) if (typeof m[field] !== "string") return `the manifest's ${field} is missing`;
  return m as SegmentManifest;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)]));
}

function fail(seq: number | null, deliveryId: string | null, at: string, reason: string): Verdict {
  return { ok: false, broken: { seq, deliveryId, at, reason } };
}

function rel(dir: string, file: string): string {
  return relative(dir, file) || basename(file);
}

if (import.meta.main) {
  const path = process.argv[2];
  if (!path || process.argv.length > 3 || path === "--help") {
    console.error("usage: npm run verify-archive -- <directory of segments and manifests | export.ndjson>");
    process.exit(2);
  }
  try {
    statSync(path);
  } catch {
    console.error(`verify-archive: ${path} does not exist`);
    process.exit(2);
  }
  const verdict = await verifyPath(path);
  (verdict.ok ? console.log : console.error)(describe(verdict));
  process.exit(verdict.ok ? 0 : 1);
}
