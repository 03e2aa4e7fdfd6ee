import { sha256Hex, toBase64, utf8 } from "../lib/crypto";
import { concat, cutSegment, nextHour, putOnce, type SegmentLimits } from "../lib/segments";
import {
  ARCHIVE_FORMAT,
  type ArchiveRecord,
  checkRecord,
  manifestText,
  parseRecordLine,
  recordLine,
  type SegmentManifest,
  segmentKeys,
} from "./archive-format";
import { CHAIN_START, type ChainPoint, checkRow, isPruned, rowToChainFields } from "./integrity";

/**
 * The ledger's archive to R2 (binding ARCHIVE), one closed segment per slice of the `archive` job
 * (jobs.ts). Segments and their manifests are written once: a put only succeeds where no object
 * is (`onlyIf` etagDoesNotMatch "*"); a retry after a crash finds the object it wrote, checks it
 * is byte-identical (the segment was planned before its first put, so the retry writes the same
 * one) and goes on; different bytes under the key stop archiving, never overwrite.
 *
 * Closing rule. A segment starts at the first record not archived yet and takes the following
 * records in seq order while they were received on the same UTC day as its first one, up to
 * 1,000 records or about 8 MiB of NDJSON. It is closed when it reached a bound, when a record of
 * another day follows it, or when its UTC day ended more than 5 minutes ago (an ingress request
 * that took its received time before midnight has committed by then). Until then it is the open
 * tail and is not archived. The job runs hourly while records wait, and at the tail's closing time.
 */

export { DAY_END_GRACE_MS, nextHour, type SegmentLimits, utcDayStart } from "../lib/segments";

export const SEGMENT_LIMITS: SegmentLimits = { records: 1000, bytes: 8 * 1024 * 1024 };
export { ARCHIVE_EVERY_MS } from "../lib/segments";
/** A halted archive (an object with other bytes under a segment's key, a record that does not verify) is tried again this much later. */
export const ARCHIVE_HALT_RETRY_MS = 6 * 3_600_000;
/** Rows serialized between two pauses while a segment is built (the pauses let record() calls in). */
const BUILD_CHUNK_ROWS = 100;
/** Bytes of a line besides body (base64), envelope and headers: field names, hashes, ids. */
const LINE_OVERHEAD = 900;

/** The `archive` job's state. */
export interface ArchiveState {
  /** The last archived record: every record through it is in R2. */
  through: ChainPoint;
  segments: number;
  records: number;
  bytes: number;
  lastArchivedAt: number | null;
  /** The segment being written, planned before its first put, so a retry after a crash writes the very same one. */
  pending: Plan | null;
}

export const ARCHIVE_INITIAL: ArchiveState = { through: CHAIN_START, segments: 0, records: 0, bytes: 0, lastArchivedAt: null, pending: null };

/** A closed segment to write. */
export interface Plan {
  firstSeq: number;
  lastSeq: number;
  closedBy: SegmentManifest["closedBy"];
  /** The manifest's createdAt (fixed in the plan, so a retry writes the same bytes). */
  createdAt: number;
}

/** What a slice did: its new state, when the job should run next (null: nothing waits), and why it is halted. */
export interface ArchiveOutcome {
  state: ArchiveState;
  dueAt: number | null;
  halted: string | null;
  /** A segment was archived in this slice. */
  archived: boolean;
}

/** What the archive slice needs from the ledger. */
export interface ArchiveDeps {
  sql: SqlStorage;
  bucket: R2Bucket;
  source: string;
  now: number;
  limits: SegmentLimits;
  /** Yields to the event loop (other requests run meanwhile). */
  pause: () => Promise<void>;
}

/** A stored row as a line of the archive and of exports. */
export function rowToArchiveRecord(r: Record<string, SqlStorageValue>): ArchiveRecord {
  const f = rowToChainFields(r);
  const pruned = isPruned(r);
  return {
    seq: f.seq,
    deliveryId: f.deliveryId,
    idDerived: f.idDerived,
    event: f.event,
    kind: f.kind,
    subject: f.subject,
    attention: f.attention,
    receivedAt: f.receivedAt,
    sourceIp: f.sourceIp,
    headers: f.headers,
    body: pruned ? null : toBase64(new Uint8Array(r.body as ArrayBuffer)),
    bodySha256: f.bodySha256,
    envelope: pruned ? null : (r.envelope as string),
    envelopeSha256: f.envelopeSha256,
    provenance: f.provenance,
    sameBodyAs: f.sameBodyAs,
    chainVersion: r.chain_version as number,
    prevHash: f.prevHash,
    recordHash: r.record_hash as string,
    bodyPrunedAt: pruned ? (r.body_pruned_at as number) : null,
  };
}

/**
 * The segment starting at `firstSeq` under the closing rule: closed (a Plan without createdAt), or
 * the open tail with the time it closes, or null when no record waits.
 */
export function planSegment(
  sql: SqlStorage,
  firstSeq: number,
  now: number,
  limits: SegmentLimits,
): Omit<Plan, "createdAt"> | { open: true; closesAt: number } | null {
  const rows = sql
    .exec<{ seq: number; received_at: number; size: number }>(
      "SELECT seq, received_at, length(body) + length(envelope) + length(headers) AS size FROM deliveries WHERE seq >= ? ORDER BY seq LIMIT ?",
      firstSeq,
      limits.records + 1,
    )
    .toArray();
  return cutSegment(
    rows.map((r) => ({ seq: r.seq, at: r.received_at, bytes: Math.ceil((r.size * 4) / 3) + LINE_OVERHEAD })),
    now,
    limits,
  );
}

/**
 * One slice of the archive job: plans the next segment (or takes the one planned before a crash),
 * builds its NDJSON in chunks with pauses between them, verifying every record's link from the
 * previous segment's head on, writes the segment and then its manifest once each, and records the
 * progress. The caller stores the returned state (and the plan is stored before the first put).
 */
export async function archiveSlice(deps: ArchiveDeps, state: ArchiveState, savePlan: (s: ArchiveState) => void): Promise<ArchiveOutcome> {
  const { sql, now } = deps;
  let plan = state.pending;
  if (plan === null) {
    const next = planSegment(sql, state.through.seq + 1, now, deps.limits);
    if (next === null) return { state, dueAt: null, halted: null, archived: false };
    if ("open" in next) return { state, dueAt: Math.min(next.closesAt, nextHour(now)), halted: null, archived: false };
    plan = { ...next, createdAt: now };
    state = { ...state, pending: plan };
    savePlan(state);
  }
  const built = await buildSegment(deps, plan, state.through);
  if (!built.ok) return halt(state, now, built.error);
  const keys = segmentKeys(deps.source, plan.firstSeq, plan.lastSeq);
  const manifest: SegmentManifest = {
    format: ARCHIVE_FORMAT,
    source: deps.source,
    segment: keys.segment,
    firstSeq: plan.firstSeq,
    lastSeq: plan.lastSeq,
    count: plan.lastSeq - plan.firstSeq + 1,
    firstReceivedAt: new Date(built.firstReceivedAt).toISOString(),
    lastReceivedAt: new Date(built.lastReceivedAt).toISOString(),
    prevHeadHash: state.through.hash,
    headHash: built.head.hash,
    sha256: built.sha256,
    bytes: built.bytes.byteLength,
    chainVersions: built.chainVersions,
    closedBy: plan.closedBy,
    createdAt: new Date(plan.createdAt).toISOString(),
  };
  const segmentPut = await putOnce(deps.bucket, keys.segment, built.bytes, built.sha256, "application/x-ndjson");
  if (segmentPut !== null) return halt(state, now, segmentPut);
  const manifestBytes = utf8(manifestText(manifest));
  const manifestPut = await putOnce(deps.bucket, keys.manifest, manifestBytes, sha256Hex(manifestBytes), "application/json");
  if (manifestPut !== null) return halt(state, now, manifestPut);
  sql.exec(
    "INSERT OR REPLACE INTO segments (first_seq, last_seq, key, records, bytes, sha256, head_hash, archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    plan.firstSeq,
    plan.lastSeq,
    keys.segment,
    manifest.count,
    manifest.bytes,
    manifest.sha256,
    manifest.headHash,
    now,
  );
  const archived: ArchiveState = {
    through: built.head,
    segments: state.segments + 1,
    records: state.records + manifest.count,
    bytes: state.bytes + manifest.bytes,
    lastArchivedAt: now,
    pending: null,
  };
  // Another closed segment may follow at once.
  return { state: archived, dueAt: now, halted: null, archived: true };
}

/**
 * A record read back from its archived segment (the `segments` row that covers its seq), checked
 * against what the ledger still holds: the same record hash and digests, and a body and envelope
 * that match them. Otherwise why not (no segment, no object, no such line, different bytes).
 */
export async function readArchived(
  sql: SqlStorage,
  bucket: R2Bucket,
  row: Record<string, SqlStorageValue>,
): Promise<{ ok: true; record: ArchiveRecord } | { ok: false; error: string }> {
  const seq = row.seq as number;
  const segment = sql
    .exec<{ key: string; last_seq: number }>("SELECT key, last_seq FROM segments WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1", seq)
    .toArray()[0];
  if (!segment || segment.last_seq < seq) return { ok: false, error: `record ${seq} is in no archived segment` };
  const object = await bucket.get(segment.key);
  if (object === null) return { ok: false, error: `the archive has no object ${segment.key}` };
  for (const line of (await object.text()).split("\n")) {
    if (!line.startsWith(`{"seq":${seq},`)) continue;
    const parsed = parseRecordLine(line);
    if (!parsed.ok) return { ok: false, error: `record ${seq} in ${segment.key} cannot be read: ${parsed.error}` };
    const r = parsed.value;
    const matches =
      r.recordHash === row.record_hash &&
      r.bodySha256 === row.body_sha256 &&
      r.body !== null &&
      r.envelope !== null &&
      checkRecord(r, { seq, prevHash: row.prev_hash as string }) === null;
    return matches ? { ok: true, record: r } : { ok: false, error: `record ${seq} in ${segment.key} does not match the ledger's digests` };
  }
  return { ok: false, error: `record ${seq} is missing from ${segment.key}` };
}

function halt(state: ArchiveState, now: number, why: string): ArchiveOutcome {
  return { state, dueAt: now + ARCHIVE_HALT_RETRY_MS, halted: why, archived: false };
}

type Built =
  | { ok: true; bytes: Uint8Array; sha256: string; head: ChainPoint; firstReceivedAt: number; lastReceivedAt: number; chainVersions: number[] }
  | { ok: false; error: string };

/** The segment's NDJSON, its records verified from `after` on; built in chunks with a pause between them. */
async function buildSegment(deps: ArchiveDeps, plan: Plan, after: ChainPoint): Promise<Built> {
  const parts: Uint8Array[] = [];
  let at = after;
  let firstReceivedAt = 0;
  let lastReceivedAt = 0;
  const versions = new Set<number>();
  while (at.seq < plan.lastSeq) {
    const rows = deps.sql.exec("SELECT * FROM deliveries WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?", at.seq, plan.lastSeq, BUILD_CHUNK_ROWS).toArray();
    if (rows.length === 0) return { ok: false, error: `record ${at.seq + 1} is missing; archiving stopped` };
    for (const r of rows) {
      const reason = checkRow(r, at);
      if (reason !== null) return { ok: false, error: `record ${r.seq as number} (${r.delivery_id as string}) does not verify: ${reason}; archiving stopped` };
      if (isPruned(r)) return { ok: false, error: `record ${r.seq as number} lost its body before it was archived; archiving stopped` };
      const record = rowToArchiveRecord(r);
      parts.push(utf8(recordLine(record)));
      if (record.seq === plan.firstSeq) firstReceivedAt = record.receivedAt;
      lastReceivedAt = record.receivedAt;
      versions.add(record.chainVersion);
      at = { seq: record.seq, hash: record.recordHash };
    }
    await deps.pause();
  }
  const bytes = concat(parts);
  return { ok: true, bytes, sha256: sha256Hex(bytes), head: at, firstReceivedAt, lastReceivedAt, chainVersions: [...versions].sort() };
}
