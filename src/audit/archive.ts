import { manifestText, type SegmentManifest, segmentKeys } from "../lib/archive-format";
import { GENESIS } from "../lib/chain";
import { sha256Hex, utf8 } from "../lib/crypto";
import { concat, cutSegment, nextHour, putOnce, type SegmentLimits } from "../lib/segments";
import { AUDIT_ARCHIVE_FORMAT, AUDIT_ARCHIVE_PREFIX, auditLineText, checkAuditLine } from "./format";
import { type AuditPoint, rowToLine } from "./store";

/**
 * The audit trail's archive to R2 (binding ARCHIVE, prefix `_audit/segments/`), in the same
 * write-once segments with manifests as a ledger's (lib/segments.ts: the closing rule and the
 * write-once put; lib/archive-format.ts: keys and manifests), so `npm run verify-archive` checks it
 * the same way. Entries are never pruned; the archive is a second, write-once copy.
 */

export const AUDIT_SEGMENT_LIMITS: SegmentLimits = { records: 1000, bytes: 8 * 1024 * 1024 };
/** A halted archive (other bytes under a segment's key, an entry that does not verify) is tried again this much later. */
export const AUDIT_ARCHIVE_HALT_RETRY_MS = 6 * 3_600_000;
/** Bytes of a line besides its texts: field names, hashes, numbers. */
const LINE_OVERHEAD = 400;

/** The archive's progress. */
export interface AuditArchiveState {
  /** Every entry through this one is in R2. */
  through: AuditPoint;
  segments: number;
  lastArchivedAt: number | null;
  /** Why archiving stopped, or null. */
  halted: string | null;
  /** The segment being written, planned before its first put, so a retry after a crash writes the very same one. */
  pending: { firstSeq: number; lastSeq: number; closedBy: SegmentManifest["closedBy"]; createdAt: number } | null;
}

export const AUDIT_ARCHIVE_INITIAL: AuditArchiveState = { through: { seq: 0, hash: GENESIS }, segments: 0, lastArchivedAt: null, halted: null, pending: null };

/**
 * One step of the archive: plans the next closed segment (or takes the pending one), builds it
 * verifying every entry's link from the previous segment's head, writes the segment and its
 * manifest once each. Answers the new state and when to look again (null: nothing waits).
 * `savePlan` stores the state with its plan before the first put.
 */
export async function archiveAuditStep(
  sql: SqlStorage,
  bucket: R2Bucket,
  state: AuditArchiveState,
  now: number,
  savePlan: (s: AuditArchiveState) => void,
  limits: SegmentLimits = AUDIT_SEGMENT_LIMITS,
): Promise<{ state: AuditArchiveState; dueAt: number | null; archived: boolean }> {
  let plan = state.pending;
  if (plan === null) {
    const rows = sql
      .exec<{ seq: number; at: number; size: number }>(
        `SELECT seq, at, length(actor) + length(action) + ifnull(length(object), 0) + ifnull(length(reason), 0)
                + ifnull(length(before), 0) + ifnull(length(after), 0) AS size
         FROM entries WHERE seq > ? ORDER BY seq LIMIT ?`,
        state.through.seq,
        limits.records + 1,
      )
      .toArray();
    const cut = cutSegment(
      rows.map((r) => ({ seq: r.seq, at: r.at, bytes: r.size * 2 + LINE_OVERHEAD })),
      now,
      limits,
    );
    if (cut === null) return { state, dueAt: null, archived: false };
    if ("open" in cut) return { state, dueAt: Math.min(cut.closesAt, nextHour(now)), archived: false };
    plan = { ...cut, createdAt: now };
    state = { ...state, pending: plan };
    savePlan(state);
  }
  const halt = (why: string) => ({ state: { ...state, halted: why }, dueAt: now + AUDIT_ARCHIVE_HALT_RETRY_MS, archived: false });
  const parts: Uint8Array[] = [];
  let at = state.through;
  let firstAt = 0;
  let lastAt = 0;
  for (const r of sql.exec("SELECT * FROM entries WHERE seq >= ? AND seq <= ? ORDER BY seq", plan.firstSeq, plan.lastSeq)) {
    const line = rowToLine(r);
    const reason = checkAuditLine(line, { seq: at.seq + 1, prevHash: at.hash });
    if (reason !== null) return halt(`audit entry ${at.seq + 1} does not verify: ${reason}; archiving stopped`);
    parts.push(utf8(auditLineText(line)));
    if (line.seq === plan.firstSeq) firstAt = line.at;
    lastAt = line.at;
    at = { seq: line.seq, hash: line.entryHash };
  }
  if (at.seq !== plan.lastSeq) return halt(`audit entry ${at.seq + 1} is missing; archiving stopped`);
  const bytes = concat(parts);
  const sha256 = sha256Hex(bytes);
  const keys = segmentKeys(AUDIT_ARCHIVE_PREFIX, plan.firstSeq, plan.lastSeq);
  const manifest: SegmentManifest<typeof AUDIT_ARCHIVE_FORMAT> = {
    format: AUDIT_ARCHIVE_FORMAT,
    source: "audit",
    segment: keys.segment,
    firstSeq: plan.firstSeq,
    lastSeq: plan.lastSeq,
    count: plan.lastSeq - plan.firstSeq + 1,
    firstReceivedAt: new Date(firstAt).toISOString(),
    lastReceivedAt: new Date(lastAt).toISOString(),
    prevHeadHash: state.through.hash,
    headHash: at.hash,
    sha256,
    bytes: bytes.byteLength,
    chainVersions: [1],
    closedBy: plan.closedBy,
    createdAt: new Date(plan.createdAt).toISOString(),
  };
  const segmentPut = await putOnce(bucket, keys.segment, bytes, sha256, "application/x-ndjson");
  if (segmentPut !== null) return halt(segmentPut);
  const manifestBytes = utf8(manifestText(manifest));
  const manifestPut = await putOnce(bucket, keys.manifest, manifestBytes, sha256Hex(manifestBytes), "application/json");
  if (manifestPut !== null) return halt(manifestPut);
  // Another closed segment may follow at once.
  return { state: { through: at, segments: state.segments + 1, lastArchivedAt: now, halted: null, pending: null }, dueAt: now, archived: true };
}
