import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { stringsEqual } from "../lib/crypto";
import { errorResponse } from "../lib/errors";

/**
 * Guards the admin surface: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.
 * With ADMIN_TOKEN unset the surface answers 503 (off), never open.
 */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.env.ADMIN_TOKEN;
  if (!expected) return errorResponse(c, 503, "admin_disabled", "The admin API is off: set the ADMIN_TOKEN secret to enable it.");
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match || !stringsEqual(match[1]!, expected)) {
    c.header("WWW-Authenticate", 'Bearer realm="admin"');
    return errorResponse(c, 401, "unauthorized", "A valid admin bearer token is required.");
  }
  await next();
});
