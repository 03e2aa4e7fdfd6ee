import type { AlertingConfig, Condition } from "../config/alerting";
import { refusesClient } from "../lib/client-refusal";
import type { EvaluationScope, Finding } from "./types";

/**
 * The state conditions of docs/alerting.md, as one pure function of what the objects' existing
 * reads report (outbox health, ledger stats and lifecycle, the Reconciler's stored summary): no
 * I/O, no clock but `now`. The shapes below are the parts of those reads it looks at, so it depends
 * on no domain folder. A read that failed is `null`: that object's issues are left as they are.
 */

/** What a target's outbox health() shows, in part. */
export interface TargetReading {
  id: string;
  health: {
    counts: { dead: number; held: number };
    oldestPendingAgeMs: number | null;
    heldBy: string | null;
    heldReason: string | null;
    breaker: { status: string; consecutiveFailures: number };
    lastError: { message: string } | null;
  } | null;
}

/** What a source's ledger and Reconciler show, in part. */
export interface SourceReading {
  id: string;
  /** Ledger stats; null when unreadable. */
  stats: { lastReceivedAt: number | null } | null;
  /** Hand-offs held for enrichment (enrichRequired), from the ledger's pull stats; null when unreadable. */
  enrichmentHeld: number | null;
  lifecycle: {
    archive: { halted: string | null };
    integrity: { report: { ok: boolean; firstBroken: { seq: number; reason: string } | null } | null };
  } | null;
  /** The Reconciler's stored summary; null without a centrepoint block, or unreadable (see `reconcileReadable`). */
  reconcile: {
    lastFinished: { outcome: string; backfilled: number; firstError: string | null; upstream: { status: number | null; endpoint: string } | null } | null;
    registration: { problems: { message: string }[]; error: string | null; upstream: { status: number | null; endpoint: string } | null } | null;
  } | null;
  /** False when the source has a centrepoint block but its Reconciler could not be read. */
  reconcileReadable: boolean;
}

/** The conditions this function evaluates (their issues resolve when not found). */
export const STATE_CONDITIONS: readonly Condition[] = [
  "dead_letters",
  "breaker_open",
  "backlog_age",
  "held",
  "source_silent",
  "registration_mismatch",
  "reconcile_failed",
  "reconcile_backfilled",
  "integrity_failed",
  "archive_halted",
];

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Every condition true now, and the scope it covers. */
export function findConditions(
  sources: readonly SourceReading[],
  targets: readonly TargetReading[],
  config: AlertingConfig,
  now: number,
): { findings: Finding[]; scope: EvaluationScope } {
  const findings: Finding[] = [];
  const skipObjects: string[] = [];
  for (const t of targets) {
    const object = { target: t.id };
    const h = t.health;
    if (!h) {
      skipObjects.push(`target:${t.id}`);
      continue;
    }
    if (h.counts.dead > 0) findings.push({ condition: "dead_letters", object, summary: `${plural(h.counts.dead, "dead dispatch")} waiting for replay` });
    if (h.breaker.status !== "closed")
      findings.push({
        condition: "breaker_open",
        object,
        summary: `breaker ${h.breaker.status} after ${plural(h.breaker.consecutiveFailures, "consecutive failure")}${h.lastError ? `: ${h.lastError.message}` : ""}`,
        holdMs: config.breakerOpenMinutes * MINUTE,
      });
    if (h.oldestPendingAgeMs !== null && h.oldestPendingAgeMs > config.oldestPendingMinutes * MINUTE)
      findings.push({
        condition: "backlog_age",
        object,
        summary: `oldest pending dispatch is ${Math.floor(h.oldestPendingAgeMs / MINUTE)} minutes old (threshold ${config.oldestPendingMinutes})`,
      });
    if (h.counts.held > 0)
      findings.push({
        condition: "held",
        object,
        summary: `${plural(h.counts.held, "dispatch")} held${h.heldBy ? ` (${h.heldBy}${h.heldReason ? `: ${h.heldReason}` : ""})` : ""}`,
        holdMs: config.heldMinutes * MINUTE,
      });
  }
  for (const s of sources) {
    const object = { source: s.id };
    const key = `source:${s.id}`;
    if (!s.stats || !s.lifecycle || s.enrichmentHeld === null || !s.reconcileReadable) {
      skipObjects.push(key);
      continue;
    }
    const silentHours = config.silentHours[s.id];
    if (silentHours !== undefined) {
      const last = s.stats.lastReceivedAt;
      // Never received: silent from the first evaluation that saw it so.
      if (last === null) findings.push({ condition: "source_silent", object, summary: "no delivery received yet", holdMs: silentHours * HOUR });
      else if (now - last >= silentHours * HOUR)
        findings.push({ condition: "source_silent", object, summary: `no delivery for ${Math.floor((now - last) / HOUR)} hours (threshold ${silentHours})` });
    }
    if (s.enrichmentHeld > 0)
      findings.push({
        condition: "held",
        object,
        summary: `${plural(s.enrichmentHeld, "hand-off")} held for enrichment (enrichRequired)`,
        holdMs: config.heldMinutes * MINUTE,
      });
    if (s.lifecycle.archive.halted !== null) findings.push({ condition: "archive_halted", object, summary: `archive halted: ${s.lifecycle.archive.halted}` });
    const report = s.lifecycle.integrity.report;
    if (report && !report.ok)
      findings.push({
        condition: "integrity_failed",
        object,
        summary: report.firstBroken ? `hash chain broken at seq ${report.firstBroken.seq}: ${report.firstBroken.reason}` : "integrity check failed",
      });
    const r = s.reconcile;
    if (!r) continue;
    const reg = r.registration;
    if (reg && refusesClient(reg.upstream))
      findings.push({ condition: "centrepoint_auth_failed", object, summary: `CentrePoint answered ${reg.upstream.status} to ${reg.upstream.endpoint}` });
    else if (reg && (reg.problems.length > 0 || reg.error !== null))
      findings.push({
        condition: "registration_mismatch",
        object,
        summary: reg.error !== null ? `registration could not be read: ${reg.error}` : reg.problems.map((p) => p.message).join("; "),
      });
    const run = r.lastFinished;
    if (run?.outcome === "failed") {
      if (refusesClient(run.upstream))
        findings.push({ condition: "centrepoint_auth_failed", object, summary: `CentrePoint answered ${run.upstream.status} to ${run.upstream.endpoint}` });
      findings.push({ condition: "reconcile_failed", object, summary: `reconciliation failed: ${run.firstError ?? "see the source page"}` });
    }
    if (run && run.backfilled > 0)
      findings.push({
        condition: "reconcile_backfilled",
        object,
        summary: `${plural(run.backfilled, "delivery")} CentrePoint logged never arrived (backfilled by the last reconciliation)`,
      });
  }
  return { findings, scope: { conditions: [...STATE_CONDITIONS], skipObjects } };
}
