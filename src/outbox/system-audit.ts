/** The outbox's own audit entries (actor system, docs/audit.md): holds and breaker openings as they start, retention once a day. */
import { auditSystem, auditSystemAfter } from "../audit/audit";
import type { Bindings } from "../env";
import { readCounter } from "../lib/counters";
import { DAY_MS } from "../lib/time";
import { PRUNED_ATTEMPTS, PRUNED_DISPATCHES } from "./counters";
import { type MetaRow, readMeta } from "./views";

/** Audit entries (actor system) for the holds this alarm started: the target held (410, unusable configuration) or its breaker opened. Once per change, never per event. */
export async function auditHolds(env: Bindings, sql: SqlStorage, was: MetaRow): Promise<void> {
  const now = readMeta(sql);
  const target = now.target_id;
  if (target === null) return;
  if (now.held_by !== null && was.held_by !== now.held_by)
    await auditSystemAfter(env, "system", { action: "target.hold", object: { target }, reason: now.last_error, after: { heldBy: now.held_by } });
  if (was.breaker_probe_at === null && now.breaker_probe_at !== null)
    await auditSystemAfter(env, "system", {
      action: "target.breaker-open",
      object: { target },
      reason: now.last_error,
      after: { failures: now.breaker_failures, probeAt: new Date(now.breaker_probe_at).toISOString() },
    });
}

/**
 * The audit entry of retention (`target.retention-prune`, actor system): retention removes a slice
 * after nearly every alarm once it is in steady state, so an entry per slice would be an audit
 * write per event. Instead at most one entry a day per target, with the dispatches and attempts
 * pruned since the previous entry and the retention that applied. When the trail cannot be
 * written, the next try is a day later and carries these rows too (the baseline moves only with an
 * entry written); append() logged the failure.
 */
export async function auditPruning(env: Bindings, sql: SqlStorage, meta: MetaRow, now: number): Promise<void> {
  if (meta.target_id === null || (meta.prune_audited_at !== null && now - meta.prune_audited_at < DAY_MS)) return;
  const dispatches = readCounter(sql, PRUNED_DISPATCHES);
  const attempts = readCounter(sql, PRUNED_ATTEMPTS);
  if (dispatches <= meta.prune_audited_dispatches) return;
  try {
    await auditSystem(env, "system", {
      action: "target.retention-prune",
      object: { target: meta.target_id },
      after: {
        dispatches: dispatches - meta.prune_audited_dispatches,
        attempts: attempts - meta.prune_audited_attempts,
        retentionDays: meta.retention_days,
        since: meta.prune_audited_at === null ? null : new Date(meta.prune_audited_at).toISOString(),
      },
    });
    sql.exec("UPDATE meta SET prune_audited_at = ?, prune_audited_dispatches = ?, prune_audited_attempts = ?", now, dispatches, attempts);
  } catch {
    sql.exec("UPDATE meta SET prune_audited_at = ?", now);
  }
}
