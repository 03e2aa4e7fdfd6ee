import { env } from "cloudflare:test";
import { trailOf } from "../../src/audit/audit";
import type { AuditQuery } from "../../src/audit/store";
import { entryJson } from "../../src/admin/routes/audit";

/**
 * The real audit trail as tests read it (the AuditTrail Durable Object, not a mock of audit()):
 * entries as `GET /admin/audit` answers them (object, before and after parsed), newest first.
 * A test takes `trailMark()` before what it does and reads `entriesSince(mark, ...)` after, so
 * entries of earlier tests never count.
 */

export type TrailEntry = ReturnType<typeof entryJson>;

/** Filters of the trail's listing: actor, action (`session.*` for a prefix), object (`s1` or `source:s1`). */
export type TrailFilter = Omit<AuditQuery, "limit" | "cursor" | "from" | "to">;

/** The seq of the trail's newest entry (0 when empty). */
export async function trailMark(): Promise<number> {
  return (await trailOf(env).list({ limit: 1 })).items[0]?.seq ?? 0;
}

/** The entries matching `filter` written after `mark` (at most 100), newest first. */
export async function entriesSince(mark: number, filter: TrailFilter = {}): Promise<TrailEntry[]> {
  const { items } = await trailOf(env).list({ ...filter, limit: 100 });
  return items.filter((e) => e.seq > mark).map(entryJson);
}

/** `env` with an audit trail that cannot be written (every append rejects): for the "refused when unrecorded" paths. */
export function envWithBrokenTrail(): typeof env {
  const failing = {
    idFromName: () => ({}),
    get: () => ({ append: () => Promise.reject(new Error("storage down")) }),
  } as unknown as typeof env.AUDIT;
  return { ...env, AUDIT: failing };
}
