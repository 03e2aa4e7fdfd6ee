import { takeByBytes } from "../lib/batch";
import { sha256Hex } from "../lib/crypto";
import { type ChainFields, checkLink, GENESIS } from "./chain";
import { INTEGRITY_SLICE as PACED_SLICE } from "./pacing";
import type { IntegrityReport } from "./queries";

/**
 * The integrity check of a ledger's hash chain, incremental and in slices. A *checkpoint* (the
 * last verified seq and its record hash) is stored with the `verify` job (jobs.ts); an
 * incremental run verifies the records after it, a full run everything from the chain's start (or
 * from the last record retention removed, whose hash is kept: retention.ts). Each slice reads at
 * most `rows` records and `bytes` of payload, synchronously, and the ledger's alarm runs one slice
 * per due job, so `record()` calls are served between slices. workerd's clock does not move during
 * synchronous work, so a slice is bounded by rows and bytes, sized to take a few milliseconds
 * (docs/benchmarks.md measures `record()` while a full run goes on).
 */

/** A position in the chain: a record's seq and record_hash; seq 0 with GENESIS is before record 1. */
export interface ChainPoint {
  seq: number;
  hash: string;
}

/** Before record 1. */
export const CHAIN_START: ChainPoint = { seq: 0, hash: GENESIS };

/** How much one slice reads at most. */
export interface SliceLimits {
  rows: number;
  bytes: number;
}

/** Records and payload bytes of one slice: a few milliseconds of hashing (pacing.ts). */
export const INTEGRITY_SLICE: SliceLimits = PACED_SLICE;

/** A run in progress: what it verifies (after `from`, through `upTo`) and how far it got (`at`). */
export interface IntegrityRun {
  mode: IntegrityReport["mode"];
  from: ChainPoint;
  at: ChainPoint;
  upTo: number;
  startedAt: number;
  checked: number;
  prunedBodies: number;
}

/** The `verify` job's state. */
export interface VerifyState {
  /** Everything from the chain's start (or the pruned anchor) through this point verified, and when. */
  checkpoint: (ChainPoint & { at: number }) | null;
  run: IntegrityRun | null;
  /** When the last full run finished. */
  lastFullAt: number | null;
}

export const VERIFY_INITIAL: VerifyState = { checkpoint: null, run: null, lastFullAt: null };

/** Outcome of one slice. */
export interface SliceResult {
  /** The last record verified (or `from`). */
  at: ChainPoint;
  checked: number;
  prunedBodies: number;
  broken: IntegrityReport["firstBroken"];
}

/**
 * A stored row's chain fields; a version 1 row without a stored envelope digest hashes its
 * envelope text (retention stores the digest before an envelope goes).
 */
export function rowToChainFields(r: Record<string, SqlStorageValue>): ChainFields {
  return {
    prevHash: r.prev_hash as string,
    seq: r.seq as number,
    deliveryId: r.delivery_id as string,
    idDerived: r.id_derived === 1,
    event: r.event as string | null,
    kind: r.kind as string,
    subject: r.subject as string | null,
    attention: r.attention as string | null,
    receivedAt: r.received_at as number,
    sourceIp: r.source_ip as string | null,
    headers: r.headers as string,
    bodySha256: r.body_sha256 as string,
    envelopeSha256: (r.envelope_sha256 as string | null) ?? sha256Hex(r.envelope as string),
    provenance: r.provenance as string,
    sameBodyAs: r.same_body_as as string | null,
  };
}

/** Whether a row's body and envelope were pruned (their digests stay). */
export function isPruned(r: Record<string, SqlStorageValue>): boolean {
  return r.body_pruned_at !== null && r.body_pruned_at !== undefined;
}

/**
 * Verifies the records after `from` through `upTo`, at most `limits` of them: every link, every
 * stored body's and envelope's digest (a pruned record's link only). Stops at the first broken one.
 */
export function verifySlice(sql: SqlStorage, from: ChainPoint, upTo: number, limits: SliceLimits): SliceResult {
  const none = { at: from, checked: 0, prunedBodies: 0, broken: null };
  if (from.seq >= upTo) return none;
  const sizes = sql
    .exec<{ seq: number; size: number }>(
      "SELECT seq, length(body) + length(envelope) + length(headers) AS size FROM deliveries WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
      from.seq,
      upTo,
      limits.rows,
    )
    .toArray();
  if (sizes.length === 0) return { ...none, broken: { seq: from.seq + 1, deliveryId: "(missing)", reason: `record ${from.seq + 1} is missing` } };
  const last = takeByBytes(sizes, (s) => s.size, limits.bytes).at(-1)!.seq;
  let at = from;
  let checked = 0;
  let prunedBodies = 0;
  for (const r of sql.exec("SELECT * FROM deliveries WHERE seq > ? AND seq <= ? ORDER BY seq", from.seq, last)) {
    const reason = checkRow(r, at);
    if (reason !== null) return { at, checked, prunedBodies, broken: { seq: r.seq as number, deliveryId: r.delivery_id as string, reason } };
    at = { seq: r.seq as number, hash: r.record_hash as string };
    checked++;
    if (isPruned(r)) prunedBodies++;
  }
  return { at, checked, prunedBodies, broken: null };
}

/**
 * Why a stored row does not verify as the record after `prev`, or null: its link, its record hash,
 * and the digests of its stored body and envelope (not of a pruned one: nothing is left to hash).
 */
export function checkRow(r: Record<string, SqlStorageValue>, prev: ChainPoint): string | null {
  const pruned = isPruned(r);
  return checkLink(
    {
      version: r.chain_version as number,
      recordHash: r.record_hash as string,
      fields: rowToChainFields(r),
      bodyDigest: pruned ? null : sha256Hex(new Uint8Array(r.body as ArrayBuffer)),
      envelopeDigest: pruned || r.envelope_sha256 === null ? null : sha256Hex(r.envelope as string),
    },
    { seq: prev.seq + 1, prevHash: prev.hash },
  );
}

/**
 * Starts a run through `head`: incremental from the checkpoint, or full from the chain's start;
 * either way not before `anchor` (records before it were pruned, after they were archived).
 */
export function startRun(state: VerifyState, mode: IntegrityRun["mode"], anchor: ChainPoint, head: number, now: number): VerifyState {
  const checkpoint = state.checkpoint ?? CHAIN_START;
  const base = mode === "full" ? CHAIN_START : checkpoint;
  const from = base.seq < anchor.seq ? anchor : { seq: base.seq, hash: base.hash };
  return { ...state, run: { mode, from, at: from, upTo: head, startedAt: now, checked: 0, prunedBodies: 0 } };
}

/** Where the next slice of a run starts: where it got to, or the anchor when retention removed the records in between. */
export function nextFrom(run: IntegrityRun, anchor: ChainPoint): ChainPoint {
  return run.at.seq < anchor.seq ? anchor : run.at;
}

/**
 * Folds a slice into the run. When the run is over (reached `upTo`, or found a broken record) the
 * report is returned and the checkpoint moved: to the last verified record, which for a broken
 * chain is the one before the break, so every later run finds the break again.
 */
export function advanceRun(state: VerifyState, slice: SliceResult, now: number): { state: VerifyState; report: IntegrityReport | null } {
  const run = state.run!;
  const next: IntegrityRun = { ...run, at: slice.at, checked: run.checked + slice.checked, prunedBodies: run.prunedBodies + slice.prunedBodies };
  if (slice.broken === null && next.at.seq < next.upTo) return { state: { ...state, run: next }, report: null };
  const report: IntegrityReport = {
    ok: slice.broken === null,
    mode: run.mode,
    checked: next.checked,
    fromSeq: run.from.seq + 1,
    verifiedThrough: next.at.seq,
    headHash: next.at.hash,
    firstBroken: slice.broken,
    prunedBodies: next.prunedBodies,
    startedAt: run.startedAt,
    checkedAt: now,
  };
  return {
    state: {
      checkpoint: { ...next.at, at: now },
      run: null,
      lastFullAt: run.mode === "full" && report.ok ? now : state.lastFullAt,
    },
    report,
  };
}
