import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { errorResponse } from "../lib/errors";
import { roleAllows, type Role } from "../lib/actor";

/**
 * Route guard: the caller's role must be at least `need`, else 403 `forbidden` naming the identity
 * and both roles. Every admin route declares its role with this (reads `viewer`, operator actions
 * `operator`, configuration and people `admin`).
 */
export const requireRole = (need: Role) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const actor = c.var.actor;
    if (!actor) return errorResponse(c, 401, "unauthorized", "No verified caller.");
    if (!roleAllows(actor.role, need)) {
      return errorResponse(c, 403, "forbidden", `${actor.id} has the role ${actor.role}; this needs ${need}.`);
    }
    await next();
  });
