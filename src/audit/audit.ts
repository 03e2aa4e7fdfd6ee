import type { Context } from "hono";
import type { AppEnv, Bindings } from "../env";

/**
 * The audit trail's entry point (issue 18). Interface fixed first so every admin route can call it;
 * the hash-chained trail behind it is src/audit/ (being built). Contract:
 * - `audit(c, entry)` is awaited by a route BEFORE it performs (or answers) the action it records;
 *   it throws `AuditUnavailable` when the entry cannot be written, and the route then refuses
 *   the action (the app's error handler answers 503), so nothing unrecorded happens.
 * - actor, role, via, address and request id come from the request (`c.var.actor`, `c.var.requestId`).
 * - `before`/`after` are configuration documents as stored in KV (secret names only, never values).
 */
export interface AuditInput {
  /** `<object>.<verb>`, e.g. `source.put`, `target.delete`, `delivery.replay`, `delivery.read`, `token.create`. */
  action: string;
  /** Ids of what the action concerns, e.g. `{ source: "s1", delivery: "d1" }`. */
  object?: Record<string, string>;
  reason?: string | null;
  before?: unknown;
  after?: unknown;
}

/** Thrown when an entry cannot be written; the action must not happen. */
export class AuditUnavailable extends Error {}

/** Records an operator action (see the contract above). */
export async function audit(c: Context<AppEnv>, input: AuditInput): Promise<void> {
  void c;
  void input;
}

/** Records an automatic action (actor `system`, via `cron` or `system`). */
export async function auditSystem(env: Bindings, via: "cron" | "system", input: AuditInput): Promise<void> {
  void env;
  void via;
  void input;
}
