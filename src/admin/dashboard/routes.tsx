import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { log } from "../../lib/log";
import type { AdminEnv } from "../../middleware/admin-auth";
import { AuditUnavailable, ReasonRequired } from "../../audit/audit";
import { renderError } from "./render";
import { alerts } from "./routes/alerts";
import { audit } from "./routes/audit";
import { deliveries } from "./routes/deliveries";
import { issues } from "./routes/issues";
import { overview } from "./routes/overview";
import { people } from "./routes/people";
import { signIn } from "./routes/sign-in";
import { sources } from "./routes/sources";
import { targets } from "./routes/targets";

/**
 * The operator dashboard, server-rendered HTML: `/admin/` overview, `/admin/login`,
 * `/admin/logout` and the pages under `/admin/ui/`. Mounted at the root so that `/admin/` itself
 * is a route. Pages need a session (or the bearer); every POST needs a same-origin Origin /
 * Sec-Fetch-Site and the session's CSRF token (csrf.ts). See docs/dashboard.md.
 *
 * One page per prefix: everything under `/admin/ui/<page>` is in routes/<page>.tsx (its view in
 * pages/); render.tsx sends pages with the dashboard's security headers.
 */
export const dashboard = new Hono<AdminEnv>();

// The page apps have no error handler of their own, so their routes run under this one (Hono's route()).
dashboard.onError((e, c) => {
  if (e instanceof AuditUnavailable) return renderError(c, 503, `${e.message} Try again in a moment.`);
  if (e instanceof ReasonRequired) return renderError(c, 400, `${e.message} Go back and fill in the reason.`);
  if (e instanceof HTTPException && e.status === 403)
    return renderError(c, 403, "This request did not come from this dashboard's own pages, so it was refused.");
  log("error", "dashboard error", { requestId: c.var.requestId, path: c.req.path, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  return renderError(c, 500, "Something went wrong while building this page. The details are in the Worker's logs.");
});

dashboard.route("/", overview); // /admin, /admin/ and /admin/ui (full paths in the file)
dashboard.route("/admin", signIn); // /admin/login, /admin/logout
dashboard.route("/admin/ui/deliveries", deliveries);
dashboard.route("/admin/ui/targets", targets);
dashboard.route("/admin/ui/sources", sources);
dashboard.route("/admin/ui/audit", audit);
dashboard.route("/admin/ui/issues", issues);
dashboard.route("/admin/ui/alerts", alerts);
dashboard.route("/admin/ui/people", people);
