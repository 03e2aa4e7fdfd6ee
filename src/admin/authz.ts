import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { errorResponse } from "../lib/errors";
import { roleAllows, type Role } from "../lib/actor";

/**
 * Route guard: the caller's role must be at least `need`, else 403 `forbidden` naming the identity
 * and both roles (or `refuse`'s answer: the dashboard's page). Every admin route declares its role with this (reads `viewer`, operator actions
 * `operator`, configuration and people `admin`).
 */
export const requireRole = <E extends AppEnv = AppEnv>(need: Role, refuse?: (c: Context<E>, message: string) => Response | Promise<Response>) => {
  const guard = createMiddleware<E>(async (c, next) => {
    const actor = c.var.actor;
    if (!actor) return errorResponse(c, 401, "unauthorized", "No verified caller.");
    if (!roleAllows(actor.role, need)) {
      const message = `${actor.id} has the role ${actor.role}; this needs ${need}.`;
      return refuse ? refuse(c, message) : errorResponse(c, 403, "forbidden", message);
    }
    await next();
  });
  guards.set(guard, need);
  return guard;
};

/** Every guard made by requireRole, with its role: how a test reads the role each route of the app declares. */
const guards = new WeakMap<object, Role>();

/** The role a route handler declares when it is a requireRole guard (unwrapping what Hono's `route()` wraps), else undefined. */
export function declaredRole(handler: unknown): Role | undefined {
  let h = handler as { __COMPOSED_HANDLER?: unknown } | undefined;
  for (let i = 0; i < 5 && h; i++) {
    const role = guards.get(h);
    if (role) return role;
    h = h.__COMPOSED_HANDLER as typeof h;
  }
  return undefined;
}
