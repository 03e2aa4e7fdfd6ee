import { configExists, listConfigs } from "../../config/store";
import type { Bindings } from "../../env";
import type { DispatchFilter } from "../../outbox/views";
import { outboxOf } from "./stubs";

/** Replay and resume, one path for the JSON API and the dashboard. */

/** Per target: whether the dispatch went back to the queue (false: it was still pending, delivering or held). */
export interface ReplayOutcome {
  targets: { target: string; replayed: boolean }[];
}

/** The target ids to act on: the one named (when its document exists), else every target document, valid or not. */
async function targetIds(env: Bindings, target: string | undefined): Promise<string[]> {
  if (target) return (await configExists(env.CONFIG, "target", target)) ? [target] : [];
  return (await listConfigs(env.CONFIG, "target")).map((t) => t.id);
}

/** Sends one delivery again to every target that has it, or to one; null when no such target has it. */
export async function replayDelivery(env: Bindings, source: string, id: string, target?: string): Promise<ReplayOutcome | null> {
  const ids = await targetIds(env, target);
  const results = await Promise.all(ids.map(async (t) => ({ target: t, ...(await outboxOf(env, t).replay(source, id)) })));
  const found = results.filter((r) => r.found).map(({ target: t, replayed }) => ({ target: t, replayed }));
  return found.length === 0 ? null : { targets: found };
}

/**
 * Bulk replay by filter, one budget of `limit` spent target by target, so a call never replays
 * more than `limit`. `more` when some are left for another call.
 */
export async function replayMany(
  env: Bindings,
  filter: Omit<DispatchFilter, "limit"> & { target?: string; limit: number },
): Promise<{ replayed: number; more: boolean; targets: { target: string; replayed: number; remaining: number }[] }> {
  const { target, limit, ...rest } = filter;
  let budget = limit;
  const ids = await targetIds(env, target);
  const targets: { target: string; replayed: number; remaining: number }[] = [];
  let visited = 0;
  for (const id of ids) {
    if (budget === 0) break;
    const r = await outboxOf(env, id).replayWhere({ ...rest, limit: budget });
    visited++;
    budget -= r.replayed;
    if (r.replayed > 0 || r.remaining > 0) targets.push({ target: id, ...r });
  }
  return { replayed: limit - budget, more: visited < ids.length || targets.some((t) => t.remaining > 0), targets };
}

/** Resumes a target: held dispatches go out again, a 410 pause is lifted, the breaker closes. Null when the target is unknown. */
export async function resumeTarget(env: Bindings, target: string): Promise<{ resumed: number } | null> {
  if (!(await configExists(env.CONFIG, "target", target))) return null;
  return outboxOf(env, target).resume();
}
