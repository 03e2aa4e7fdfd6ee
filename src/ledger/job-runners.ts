import { loadConfig } from "../config/store";
import { reportIssue } from "../alerts/report";
import { auditSystemAfter } from "../audit/audit";
import type { Bindings } from "../env";
import { readCounter } from "../lib/counters";
import { log } from "../lib/log";
import { DAY_MS } from "../lib/time";
import { ARCHIVE_INITIAL, type ArchiveState, archiveSlice, type SegmentLimits } from "./archive";
import { advanceRun, type ChainPoint, nextFrom, type SliceLimits, startRun, VERIFY_INITIAL, type VerifyState, verifySlice } from "./integrity";
import { nextHandoffAt } from "./handoff";
import { dueJobs, type JobKind, nextJobAt, readJob, scheduleJob, writeJob } from "./jobs";
import { COUNTER, type IntegrityReport, type IntegrityStatus, type LedgerLifecycle, ledgerSource, readMeta, writeMeta } from "./queries";
import { heldBackStatus, PRUNE_INITIAL, pruneSlice } from "./retention";

/**
 * The runners of a ledger's background jobs (jobs.ts holds their rows): one bounded slice of
 * archive (archive.ts), retention (retention.ts) or the integrity check (integrity.ts) per alarm
 * run, and the status they leave. Talks to its Durable Object through `JobHost`.
 */

/** Wait before a job whose slice failed runs again. */
const JOB_RETRY_MS = 5 * 60_000;

/** What the job runners need of their Durable Object. */
export interface JobHost {
  sql: SqlStorage;
  transaction: <T>(f: () => T) => T;
  env: Bindings;
  /** Keeps the object alive for work off the caller's path (an issue report). */
  waitUntil(promise: Promise<unknown>): void;
  /** Bounds of a slice and the pause after a run that did one, read at each run (tests make them small). */
  limits(): { integritySlice: SliceLimits; segmentLimits: SegmentLimits; jobPaceMs: number };
  /** The newest record's seq (0 for an empty ledger). */
  headSeq(): number;
  /** Whether the archive job is scheduled now (a record need not schedule it then). */
  archiveScheduled(scheduled: boolean): void;
}

/** One slice of every due job, earliest first; a failing slice is recorded on its job and retried later, the others still run. */
export async function runDueJobs(host: JobHost, now: number): Promise<void> {
  const due = dueJobs(host.sql, now);
  for (const kind of due) {
    try {
      await runJob(host, kind, now);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log("error", "ledger job failed; retrying later", { source: ledgerSource(host.sql), job: kind, error: message });
      const job = readJob<unknown>(host.sql, kind, {});
      writeJob(host.sql, { ...job, dueAt: now + JOB_RETRY_MS, lastRunAt: now, lastError: message });
    }
  }
  // A pause before the next alarm run, so that a long job (a full re-verification) takes a bounded share of the object's time.
  if (due.length > 0) await new Promise((resolve) => setTimeout(resolve, host.limits().jobPaceMs));
}

/** One slice of a job. */
async function runJob(host: JobHost, kind: JobKind, now: number): Promise<void> {
  if (kind === "verify") verifyStep(host, now, null);
  else if (kind === "archive") await archiveStep(host, now);
  else await pruneStep(host, now);
}

/**
 * One slice of retention (retention.ts) under the source's `retention`, read from KV each run:
 * never beyond the archived records. Without retention it looks again daily (the document may change).
 */
async function pruneStep(host: JobHost, now: number): Promise<void> {
  const { sql } = host;
  const source = ledgerSource(sql);
  const loaded = source === "" ? null : await loadConfig(host.env.CONFIG, "source", source);
  // Without a retention nothing is pruned, but removed ids still expire; the job looks again daily (the document may change).
  const retention = (loaded?.state === "valid" ? loaded.config.retention : undefined) ?? {};
  // After the await: read the jobs' rows again.
  const job = readJob(sql, "prune", PRUNE_INITIAL);
  const archivedThrough = readJob(sql, "archive", ARCHIVE_INITIAL).state.through.seq;
  const outcome = host.transaction(() => {
    const o = pruneSlice(sql, retention, job.state, archivedThrough, now);
    writeJob(sql, {
      ...job,
      state: o.state,
      dueAt: o.error ? now + DAY_MS : Math.min(o.dueAt ?? Infinity, now + DAY_MS),
      lastRunAt: now,
      lastError: o.error,
    });
    return o;
  });
  if (outcome.error) log("error", "ledger pruning stopped", { source, error: outcome.error });
  else if (outcome.bodies + outcome.records > 0) {
    log("info", "ledger pruned", { source, bodies: outcome.bodies, records: outcome.records });
    await auditSystemAfter(host.env, "system", {
      action: "source.retention-prune",
      object: { source },
      after: { bodies: outcome.bodies, records: outcome.records, retention },
    });
  }
}

/** One segment to R2 (archive.ts), or nothing when the tail is still open. */
async function archiveStep(host: JobHost, now: number): Promise<void> {
  const { sql } = host;
  const before = readJob(sql, "archive", ARCHIVE_INITIAL);
  const save = (state: ArchiveState) => writeJob(sql, { ...readJob(sql, "archive", ARCHIVE_INITIAL), state });
  const deps = {
    sql,
    bucket: host.env.ARCHIVE,
    source: ledgerSource(sql),
    now,
    limits: host.limits().segmentLimits,
    pause: () => new Promise<void>((resolve) => setTimeout(resolve, 0)),
  };
  const outcome = await archiveSlice(deps, before.state, save);
  // After the awaits: keep a due time a record set meanwhile, if earlier than the outcome's.
  const current = readJob(sql, "archive", ARCHIVE_INITIAL);
  const setMeanwhile = current.dueAt !== before.dueAt ? current.dueAt : null;
  const dueAt = outcome.dueAt === null ? setMeanwhile : Math.min(outcome.dueAt, setMeanwhile ?? Infinity);
  writeJob(sql, { ...current, state: outcome.state, dueAt, lastRunAt: now, lastError: outcome.halted });
  host.archiveScheduled(dueAt !== null);
  // Newly archived records may be old enough for retention.
  if (outcome.archived) scheduleJob(sql, "prune", now);
  if (outcome.halted) {
    log("error", "ledger archive halted", { source: deps.source, error: outcome.halted });
    host.waitUntil(reportIssue(host.env, { condition: "archive_halted", object: { source: deps.source }, summary: `archive halted: ${outcome.halted}` }));
  }
}

/**
 * One slice of the integrity check: of the run in progress, or of a new one (`start`; null, from
 * the alarm: the daily incremental run). Stores the progress, and the report when the run ends.
 */
export function verifyStep(host: JobHost, now: number, start: "incremental" | "full" | null): VerifyState {
  const { sql } = host;
  const job = readJob(sql, "verify", VERIFY_INITIAL);
  let state = job.state;
  const anchor = chainAnchor(sql);
  const head = host.headSeq();
  if (state.run === null || (start === "full" && state.run.mode !== "full")) {
    const mode = start ?? "incremental";
    // An incremental run with nothing after the checkpoint has nothing to do: the report stays as it is.
    if (mode === "incremental" && Math.max(state.checkpoint?.seq ?? 0, anchor.seq) >= head) {
      writeJob(sql, { ...job, dueAt: now + DAY_MS, lastRunAt: now, lastError: null });
      return state;
    }
    state = startRun(state, mode, anchor, head, now);
  }
  const run = state.run!;
  const slice = verifySlice(sql, nextFrom(run, anchor), run.upTo, host.limits().integritySlice);
  const advanced = advanceRun(state, slice, now);
  writeJob(sql, { ...job, state: advanced.state, dueAt: advanced.state.run ? now : now + DAY_MS, lastRunAt: now, lastError: null });
  const report = advanced.report;
  if (report) {
    writeMeta(sql, "integrity", report);
    const fields = { source: ledgerSource(sql), mode: report.mode, checked: report.checked, verifiedThrough: report.verifiedThrough };
    if (report.ok) log("info", "ledger integrity intact", { ...fields, headHash: report.headHash });
    else {
      log("error", "ledger integrity broken", { ...fields, firstBroken: report.firstBroken });
      const broken = report.firstBroken ? `hash chain broken at seq ${report.firstBroken.seq}: ${report.firstBroken.reason}` : "integrity check failed";
      host.waitUntil(reportIssue(host.env, { condition: "integrity_failed", object: { source: fields.source }, summary: broken }));
    }
  }
  return advanced.state;
}

/** When the alarm should fire: at the earliest pending hand-off (not before `notBefore`) or due job; null when nothing waits. */
export function nextAlarmAt(sql: SqlStorage, notBefore = 0): number | null {
  const handoff = nextHandoffAt(sql);
  const job = nextJobAt(sql);
  if (handoff === null && job === null) return null;
  return Math.min(handoff === null ? Infinity : Math.max(handoff, notBefore), job ?? Infinity);
}

/** The newest full run's start time (null before the first), for a caller that decides whether to ask for a full run. */
export function lastFullAt(sql: SqlStorage): number | null {
  return readJob(sql, "verify", VERIFY_INITIAL).state.lastFullAt;
}

/** Archive, retention and integrity progress, from the jobs' stored state and the counters. */
export function lifecycleStatus(sql: SqlStorage, head: number): LedgerLifecycle {
  const archive = readJob(sql, "archive", ARCHIVE_INITIAL);
  const prune = readJob(sql, "prune", PRUNE_INITIAL);
  const { through, segments, records, bytes, lastArchivedAt } = archive.state;
  return {
    head,
    archive: {
      archivedThrough: through.seq,
      lagRecords: head - through.seq,
      segments,
      records,
      bytes,
      lastArchivedAt,
      nextAt: archive.dueAt,
      halted: archive.lastError,
    },
    retention: {
      bodiesPrunedThrough: prune.state.bodiesThrough,
      recordsPrunedThrough: prune.state.recordsThrough.seq,
      prunedBodies: readCounter(sql, COUNTER.prunedBodies),
      prunedRecords: readCounter(sql, COUNTER.prunedRecords),
      lastPrunedAt: prune.state.lastPrunedAt,
      nextAt: prune.dueAt,
      error: prune.lastError,
      ...heldBackStatus(prune.state),
    },
    integrity: integrityStatus(sql, head, readJob(sql, "verify", VERIFY_INITIAL).state),
  };
}

/** The integrity status the admin API and the dashboard show (`state`: the verify job's, the stored one when omitted). */
export function integrityStatus(sql: SqlStorage, head: number, state: VerifyState = readJob(sql, "verify", VERIFY_INITIAL).state): IntegrityStatus {
  const run = state.run;
  return {
    report: storedReport(readMeta(sql, "integrity")),
    running: run && { mode: run.mode, through: run.at.seq, upTo: run.upTo, startedAt: run.startedAt, checked: run.checked },
    verifiedThrough: state.checkpoint?.seq ?? 0,
    head,
  };
}

/** Where the chain starts in this ledger: before record 1, or at the last record retention removed. */
export function chainAnchor(sql: SqlStorage): ChainPoint {
  return readJob(sql, "prune", PRUNE_INITIAL).state.recordsThrough;
}

/** The stored report; one kept before incremental checks (a full check, fewer fields) reads as a full run from record 1. */
function storedReport(
  stored: (Pick<IntegrityReport, "ok" | "checked" | "headHash" | "firstBroken" | "checkedAt"> & Partial<IntegrityReport>) | null,
): IntegrityReport | null {
  if (!stored) return null;
  return { mode: "full", fromSeq: 1, verifiedThrough: stored.checked, prunedBodies: 0, startedAt: stored.checkedAt, ...stored };
}
