import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { audit } from "../audit/audit";
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
      await recordRefusal(c, need);
      return refuse ? refuse(c, message) : errorResponse(c, 403, "forbidden", message);
    }
    await next();
  });
  guards.set(guard, need);
  return guard;
};

/**
 * Records a refused attempt (`access.refused`: who, with which role, what they asked for and the
 * role it needs) before the refusal is answered: 21 CFR 11.10(d) asks who tried what, not only who
 * did what. Best effort: when the trail cannot be written the refusal is still answered (403, not
 * 503; nothing was done) and append() has logged the failure.
 */
async function recordRefusal<E extends AppEnv>(c: Context<E>, need: Role): Promise<void> {
  try {
    await audit(c, { action: "access.refused", object: { route: `${c.req.method} ${c.req.path}`, needs: need } });
  } catch {
    // Logged by append(); the refusal stands either way.
  }
}

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
