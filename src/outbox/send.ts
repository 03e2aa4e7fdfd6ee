import { log } from "../lib/log";
import { breakerAfter, breakerAllows, type BreakerState } from "./breaker";
import { type AttemptResult, prepareBatch, prepareRequest, redactResult, type ResolvedTarget, sendRequest } from "./attempt";
import { type Completion, type CompletionPolicy, unclaim } from "./transitions";
import type { HandoffItem } from "./types";
import type { PayloadRow } from "./views";

/**
 * The sends of one outbox alarm run: one claimed dispatch at a time (concurrently, up to the
 * target's concurrency), or a whole claimed batch as one request (batch mode). Each finished
 * attempt is queued on the run as a Completion; the outbox writes them (RunIO.flush).
 */

/** What the sends need of the outbox: its SQL, a synchronous transaction, and the flush of finished attempts. */
export interface RunIO {
  sql: SqlStorage;
  transaction: <T>(f: () => T) => T;
  flush: (run: Run, policy?: CompletionPolicy) => void;
}

/** What the sends of one alarm run share. */
export interface Run {
  targetId: string;
  target: ResolvedTarget;
  policy: CompletionPolicy;
  /** Set when an attempt of this run got a 410: the rest of the run sends nothing. */
  paused: boolean;
  /**
   * The breaker as this run's finished attempts leave it (written with them at the end of the
   * batch): once it is open, the run's rows not sent yet go back unsent instead of each waiting for
   * a target that is down.
   */
  breaker: BreakerState;
  /** Finished attempts not yet written; written together (one transaction) at the end of the batch, or at once after a 410. */
  done: Completion[];
  /** This run's successful single sends, logged together in one line by logDelivered (a failure gets its own line at once). */
  delivered: { source: string; deliveryId: string; status: number | null; ms: number }[];
}

/**
 * Batch mode: sends the claimed rows as one request and completes every member's attempt with
 * its result, written at once (a batch that got its 2xx is never sent again). Rows the filter
 * does not want, or whose filter failed, are completed alone.
 */
export async function sendBatch(io: RunIO, sends: { row: PayloadRow; attemptN: number }[], run: Run): Promise<void> {
  if (sends.length === 0) return;
  if (run.paused || breakerAllows(run.breaker, Date.now()) === "none") {
    io.transaction(() => sends.forEach((s) => unclaim(io.sql, s.row.seq, s.attemptN, Date.now())));
    return;
  }
  const startedAt = Date.now();
  const prepared = await prepareBatch(
    sends.map((s) => payloadOf(s.row)),
    run.target,
    startedAt,
  );
  for (const { index, prepared: p } of prepared.skipped) {
    const s = sends[index]!;
    if (p.kind === "not_wanted") run.done.push({ seq: s.row.seq, attemptN: s.attemptN, result: NOT_SENT, at: Date.now(), notWanted: p.reason });
    else run.done.push({ seq: s.row.seq, attemptN: s.attemptN, result: transformFailure(p.error, 0), at: Date.now(), skipBreaker: true });
  }
  if (prepared.send !== null) {
    let result: AttemptResult;
    if (prepared.send.kind === "transform") result = transformFailure(prepared.send.error, Date.now() - startedAt);
    else {
      const sent = await sendRequest(prepared.send.request, {
        fetch: run.target.send ?? ((input, init) => fetch(input, init)),
        now: () => Date.now(),
        timeoutMs: run.target.timeoutMs,
      });
      result = redactResult(sent, run.target.secrets);
    }
    const at = Date.now();
    prepared.members.forEach((index, i) => {
      const s = sends[index]!;
      run.done.push({ seq: s.row.seq, attemptN: s.attemptN, result, at, skipBreaker: i > 0 });
    });
    run.breaker = breakerAfter(run.breaker, result, at, run.policy.probe, run.policy.breaker);
    if (result.status === 410) run.paused = true;
    log(result.ok ? "info" : "warn", "dispatch attempt", {
      target: run.targetId,
      batch: prepared.members.length,
      outcome: result.ok ? "success" : "failure",
      status: result.status,
      errorClass: result.errorClass,
      ms: result.durationMs,
    });
  }
  // One jitter draw for the whole batch: members with the same history are retried together, as a batch again.
  const draw = run.policy.random();
  io.flush(run, { ...run.policy, random: () => draw });
}

/** Sends one claimed row and completes its attempt. */
export async function sendOne(io: RunIO, row: PayloadRow, attemptN: number, run: Run): Promise<void> {
  if (run.paused || breakerAllows(run.breaker, Date.now()) === "none") {
    io.transaction(() => unclaim(io.sql, row.seq, attemptN, Date.now()));
    return;
  }
  const startedAt = Date.now();
  let result: AttemptResult;
  try {
    const prepared = await prepareRequest(
      {
        source: row.source,
        deliveryId: row.delivery_id,
        kind: row.kind,
        receivedAt: row.received_at,
        envelope: row.envelope,
        body: new Uint8Array(row.body),
        headers: JSON.parse(row.headers) as Record<string, string>,
      },
      run.target,
      startedAt,
    );
    if (prepared.kind === "not_wanted") {
      run.done.push({ seq: row.seq, attemptN, result: NOT_SENT, at: Date.now(), notWanted: prepared.reason });
      return;
    }
    if (prepared.kind === "transform") {
      result = {
        ok: false,
        status: null,
        headers: null,
        body: null,
        errorClass: "transform",
        error: prepared.error,
        durationMs: Date.now() - startedAt,
        retryAfterMs: null,
      };
    } else {
      const sent = await sendRequest(prepared.request, {
        fetch: run.target.send ?? ((input, init) => fetch(input, init)),
        now: () => Date.now(),
        timeoutMs: run.target.timeoutMs,
      });
      result = redactResult(sent, run.target.secrets);
    }
  } catch (e) {
    const error = `could not build the request: ${e instanceof Error ? e.message : String(e)}`;
    result = { ok: false, status: null, headers: null, body: null, errorClass: "config", error, durationMs: 0, retryAfterMs: null };
  }
  const at = Date.now();
  run.done.push({ seq: row.seq, attemptN, result, at });
  run.breaker = breakerAfter(run.breaker, result, at, run.policy.probe, run.policy.breaker);
  if (result.status === 410) run.paused = true;
  // A 410 is written at once (the pause must be durable before anything else goes out).
  if (run.paused) io.flush(run);
  if (result.ok) run.delivered.push({ source: row.source, deliveryId: row.delivery_id, status: result.status, ms: result.durationMs });
  else
    log("warn", "dispatch attempt", {
      target: run.targetId,
      source: row.source,
      deliveryId: row.delivery_id,
      outcome: "failure",
      status: result.status,
      errorClass: result.errorClass,
      ms: result.durationMs,
    });
}

/**
 * One `dispatches delivered` line for a run's successful sends (at most a batch, 50): the target,
 * how many, their delivery ids and sources, the statuses, and the median and longest duration. A
 * line per success cost most of the runtime's CPU in a backlog drain (a third of the profile,
 * docs/benchmarks.md) and is a Workers Logs event each; the ids keep every delivery findable by
 * `deliveryIds`. Failures keep a `dispatch attempt` line each.
 */
export function logDelivered(run: Run): void {
  const done = run.delivered.splice(0);
  if (done.length === 0) return;
  const ms = done.map((d) => d.ms).sort((a, b) => a - b);
  const statuses: Record<string, number> = {};
  for (const d of done) statuses[String(d.status)] = (statuses[String(d.status)] ?? 0) + 1;
  log("info", "dispatches delivered", {
    target: run.targetId,
    count: done.length,
    deliveryIds: done.map((d) => d.deliveryId),
    sources: [...new Set(done.map((d) => d.source))],
    statuses,
    msP50: ms[Math.floor((ms.length - 1) / 2)],
    msMax: ms[ms.length - 1],
  });
}

/** A dispatch row's payload as the expressions and the request read it. */
export function payloadOf(row: PayloadRow): HandoffItem {
  return {
    source: row.source,
    deliveryId: row.delivery_id,
    kind: row.kind,
    subject: row.subject,
    receivedAt: row.received_at,
    envelope: row.envelope,
    body: new Uint8Array(row.body),
    headers: JSON.parse(row.headers) as Record<string, string>,
  };
}

/** An attempt that failed in the target's expressions (never retried). */
function transformFailure(error: string, durationMs: number): AttemptResult {
  return { ok: false, status: null, headers: null, body: null, errorClass: "transform", error, durationMs, retryAfterMs: null };
}

/** The result recorded for a dispatch the filter did not want (its attempt is dropped, not stored). */
const NOT_SENT: AttemptResult = { ok: false, status: null, headers: null, body: null, errorClass: null, error: null, durationMs: 0, retryAfterMs: null };
