import { auditSystemAfter } from "../audit/audit";
import type { Bindings } from "../env";
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
