import type { Context } from "hono";
import type { AppEnv, Bindings } from "../env";
import { log } from "../lib/log";
import type { NewEntry } from "./store";
import { AUDIT_TRAIL_NAME } from "./trail";

/**
 * The audit trail's entry point (issue 18; docs/audit.md). Contract:
 * - `audit(c, entry)` is awaited by a route BEFORE it performs (or answers) the action it records;
 *   it throws `AuditUnavailable` when the entry cannot be written, and the route then refuses
 *   the action (the app's error handler answers 503), so nothing unrecorded happens.
 * - actor, role, via, address and request id come from the request (`c.var.actor`, `c.var.requestId`);
 *   the reason is `input.reason`, else the request's `X-Audit-Reason` header.
 * - `before`/`after` are configuration documents as stored in KV (secret names only, never values).
 * - with `reasonRequired`, a missing reason throws `ReasonRequired` (400 `reason_required`) before anything is written.
 */
export interface AuditInput {
  /** `<object>.<verb>`, e.g. `source.put`, `target.delete`, `delivery.replay`, `delivery.read`, `token.create`. */
  action: string;
  /** Ids of what the action concerns, e.g. `{ source: "s1", delivery: "d1" }`. */
  object?: Record<string, string>;
  reason?: string | null;
  before?: unknown;
  after?: unknown;
  /** Set when this action needs a reason (why, in words): without one `audit()` throws `ReasonRequired`. */
  reasonRequired?: string;
}

/** Thrown when an entry cannot be written; the action must not happen. */
export class AuditUnavailable extends Error {}

/** Thrown when an action that needs a reason came without one (answered 400 `reason_required`); nothing is recorded or done. */
export class ReasonRequired extends Error {}

/** The header that carries an API caller's reason. */
export const REASON_HEADER = "x-audit-reason";
/** Characters of a reason kept at most. */
export const MAX_REASON = 500;

/** Records an operator action (see the contract above). */
export async function audit<E extends AppEnv>(c: Context<E>, input: AuditInput): Promise<void> {
  const actor = c.var.actor;
  if (!actor) throw new AuditUnavailable("No verified caller to record.");
  const reason = cleanReason(input.reason ?? c.req.header(REASON_HEADER));
  if (input.reasonRequired && reason === null)
    throw new ReasonRequired(`${input.reasonRequired}: send it in the ${actor.via === "dashboard" ? "form's reason field" : "X-Audit-Reason header"}.`);
  await append(c.env, {
    actor: actor.id,
    role: actor.role,
    via: actor.via,
    action: input.action,
    object: input.object ?? null,
    reason,
    requestId: c.var.requestId ?? null,
    address: actor.address,
    before: input.before,
    after: input.after,
  });
}

/** Records an automatic action (actor `system`, via `cron` or `system`). */
export async function auditSystem(env: Bindings, via: "cron" | "system", input: AuditInput): Promise<void> {
  await append(env, {
    actor: "system",
    role: "system",
    via,
    action: input.action,
    object: input.object ?? null,
    reason: cleanReason(input.reason),
    requestId: null,
    address: null,
    before: input.before,
    after: input.after,
  });
}

/**
 * auditSystem for an automatic action that has already happened (what it did is known only after
 * it: rows pruned, a breaker opened): a failure to record is logged as an error, never thrown, so
 * the job it reports on goes on and is not repeated for it.
 */
export async function auditSystemAfter(env: Bindings, via: "cron" | "system", input: AuditInput): Promise<void> {
  try {
    await auditSystem(env, via, input);
  } catch {
    // append() logged it.
  }
}

/**
 * Records what happened before a caller was known (a sign-in, refused or not): `actor` is who it
 * claims or proves to be, `role` what they hold (`none` when refused).
 */
export async function auditSignIn<E extends AppEnv>(
  c: Context<E>,
  input: AuditInput & { actor: string; role: string; via: "api" | "dashboard" },
): Promise<void> {
  await append(c.env, {
    actor: input.actor,
    role: input.role,
    via: input.via,
    action: input.action,
    object: input.object ?? null,
    reason: cleanReason(input.reason),
    requestId: c.var.requestId ?? null,
    address: c.req.header("cf-connecting-ip") ?? null,
    before: undefined,
    after: undefined,
  });
}

/** The ids that are set, as an entry's object. */
export function ids(o: Record<string, string | null | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => typeof e[1] === "string" && e[1] !== ""));
}

/** A reason as recorded: trimmed, at most MAX_REASON characters; null when empty. */
export function cleanReason(reason: string | null | undefined): string | null {
  const r = (reason ?? "").trim().slice(0, MAX_REASON);
  return r === "" ? null : r;
}

/** The trail's stub. */
export function trailOf(env: Bindings) {
  return env.AUDIT.get(env.AUDIT.idFromName(AUDIT_TRAIL_NAME));
}

async function append(env: Bindings, entry: NewEntry): Promise<void> {
  try {
    await trailOf(env).append(entry);
  } catch (e) {
    log("error", "audit entry could not be written", { action: entry.action, error: e instanceof Error ? e.message : String(e) });
    throw new AuditUnavailable(`The audit trail could not record ${entry.action}; nothing was done.`);
  }
}
