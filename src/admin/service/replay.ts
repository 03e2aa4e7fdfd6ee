import { configExists, listConfigs } from "../../config/store";
import type { Bindings } from "../../env";
import type { DispatchFilter } from "../../outbox/views";
import { err, ok, type Result } from "../../lib/result";
import { ledgerOf, outboxOf } from "./stubs";

/** Replay and resume, one path for the JSON API and the dashboard. */

/** Per target: whether the dispatch went back to the queue (false: it was still pending, delivering or held), and where its payload came from. */
export interface ReplayOutcome {
  targets: { target: string; replayed: boolean; payloadFrom: "outbox" | "ledger" | "archive" }[];
}

/** Why a delivery cannot be replayed: no target has it, or its body was pruned and the archive cannot give it back. */
export type ReplayError = { error: "not_found"; message: string } | { error: "archive_missing"; message: string };

/** The target ids to act on: the one named (when its document exists), else every target document, valid or not. */
async function targetIds(env: Bindings, target: string | undefined): Promise<string[]> {
  if (target) return (await configExists(env.CONFIG, "target", target)) ? [target] : [];
  return (await listConfigs(env.CONFIG, "target")).map((t) => t.id);
}

/**
 * Sends one delivery again to every target that has it, or to one. A target whose outbox still
 * has the dispatch replays it from there; one whose outbox pruned it after delivery (the ledger's
 * hand-off says it had it) gets it again from the ledger, whose payload comes from the archive
 * once retention pruned the body.
 */
export async function replayDelivery(env: Bindings, source: string, id: string, target?: string): Promise<Result<ReplayOutcome, ReplayError>> {
  const ids = await targetIds(env, target);
  const results = await Promise.all(ids.map(async (t) => ({ target: t, ...(await outboxOf(env, t).replay(source, id)) })));
  const found: ReplayOutcome["targets"] = results.filter((r) => r.found).map(({ target: t, replayed }) => ({ target: t, replayed, payloadFrom: "outbox" }));
  const notFound = new Set(results.filter((r) => !r.found).map((r) => r.target));
  if (notFound.size > 0 && (await configExists(env.CONFIG, "source", source))) {
    const ledger = ledgerOf(env, source);
    const handed = ((await ledger.get(id))?.handoffs ?? []).filter((h) => h.handedAt !== null && notFound.has(h.targetId)).map((h) => h.targetId);
    if (handed.length > 0) {
      const replayed = await ledger.replay(id, handed);
      if (!replayed.ok)
        return err(
          replayed.error === "archive_missing" ? { error: "archive_missing", message: replayed.message } : { error: "not_found", message: replayed.message },
        );
      found.push(...replayed.targets.map((t) => ({ ...t, payloadFrom: replayed.payloadFrom })));
    }
  }
  if (found.length === 0) return err({ error: "not_found", message: target ? "That target never had this delivery." : "No target has this delivery." });
  return ok({ targets: found.sort((a, b) => a.target.localeCompare(b.target)) });
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
