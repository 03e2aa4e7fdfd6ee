import { csrf } from "hono/csrf";
import { createMiddleware } from "hono/factory";
import { log } from "../../lib/log";
import { type AdminEnv, formBinding, isCsrfToken, requireAdminPage } from "../../middleware/admin-auth";
import { renderError } from "./render";

/** Same-origin check of state-changing requests (Origin or Sec-Fetch-Site), from hono/csrf. */
export const sameOrigin = csrf();

/** The CSRF token of the session or Access sign-in must come with every form (bearer callers cannot be forged and skip it). */
export const checkCsrfToken = createMiddleware<AdminEnv>(async (c, next) => {
  const binding = formBinding(c.var.admin);
  if (binding !== null) {
    const form = await c.req.parseBody();
    const token = typeof form._csrf === "string" ? form._csrf : "";
    if (!(await isCsrfToken(c.env, binding, token))) {
      log("warn", "dashboard form refused: bad CSRF token", { requestId: c.var.requestId, path: c.req.path });
      return renderError(c, 403, "This form has expired or did not come from this dashboard. Go back, reload the page and try again.");
    }
  }
  await next();
});

/** The guards of every form POST on a page: same origin, signed in (or the bearer), the session's CSRF token. */
export const formPost = [sameOrigin, requireAdminPage, checkCsrfToken] as const;
