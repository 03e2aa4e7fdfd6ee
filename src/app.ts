import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { dashboard } from "./admin/dashboard/routes";
import { alerts } from "./admin/routes/alerts";
import { requireRole } from "./admin/authz";
import { openApiDocument } from "./admin/openapi";
import { auditRoutes } from "./admin/routes/audit";
import { deliveries } from "./admin/routes/deliveries";
import { alerting, issues } from "./admin/routes/issues";
import { metrics } from "./admin/routes/metrics";
import { operators } from "./admin/routes/operators";
import { replay } from "./admin/routes/replay";
import { sources } from "./admin/routes/sources";
import { targets } from "./admin/routes/targets";
import { trends } from "./admin/routes/trends";
import { AuditUnavailable, ReasonRequired } from "./audit/audit";
import { tokens } from "./admin/routes/tokens";
import type { AppEnv } from "./env";
import { errorResponse } from "./lib/errors";
import { log } from "./lib/log";
import { requireAdmin } from "./middleware/admin-auth";
import { files } from "./routes/files";
import { webhooks } from "./routes/webhooks";
import { RELAY_NAME, RELAY_VERSION } from "./version";

/** The Worker's HTTP surface: ingress under /webhooks, relay file links under /files, the admin API and the dashboard under /admin. */
export const app = new Hono<AppEnv>();

// One line per request, in place of Workers Logs' invocation logs (off in wrangler.toml: they record
// the full URL, a file link's signature included); here the URL's token-like parameters are redacted.
// Ingress writes its own line per request (accepted, rejected, handshake), so it gets no second one
// (a log line is a measurable share of ingest CPU: docs/benchmarks.md), and /healthz (probed every
// few seconds by monitors) none at all.
app.use(async (c, next) => {
  c.set("requestId", c.req.header("cf-ray") ?? crypto.randomUUID());
  const started = Date.now();
  await next();
  if (c.req.path.startsWith("/webhooks/") || c.req.path === "/healthz") return;
  const url = new URL(c.req.url);
  log("info", "request", { requestId: c.var.requestId, method: c.req.method, url: url.pathname + url.search, status: c.res.status, ms: Date.now() - started });
});

app.get("/", (c) => c.json({ name: RELAY_NAME, version: RELAY_VERSION }));
app.get("/healthz", (c) => c.json({ ok: true }));

app.route("/webhooks", webhooks);
app.route("/files", files);

const admin = new Hono<AppEnv>();
admin.use(async (c, next) => {
  await next();
  c.res.headers.set("Cache-Control", "no-store"); // admin answers carry configuration and delivery data: never cached
});
admin.use(requireAdmin);
// One resource per prefix: everything under /admin/<prefix> is in src/admin/routes/<resource>.ts.
admin.route("/sources", sources);
admin.route("/targets", targets);
admin.route("/deliveries", deliveries);
admin.route("/replay", replay);
admin.route("/metrics", metrics);
admin.route("/trends", trends);
admin.route("/alerts", alerts);
admin.route("/audit", auditRoutes);
admin.route("/tokens", tokens);
admin.route("/operators", operators);
admin.route("/issues", issues);
admin.route("/alerting", alerting);
admin.get("/openapi.json", requireRole("viewer"), (c, next) => openApiDocument(app)(c, next));
// The dashboard first: its pages guard themselves (sign-in redirect, CSRF); the API keeps requireAdmin.
app.route("/", dashboard);
app.route("/admin", admin);

app.notFound((c) => errorResponse(c, 404, "not_found", "No such route."));

app.onError((e, c) => {
  if (e instanceof HTTPException) return errorResponse(c, e.status as 400, "bad_request", e.message);
  if (e instanceof AuditUnavailable) return errorResponse(c, 503, "audit_unavailable", e.message);
  if (e instanceof ReasonRequired) return errorResponse(c, 400, "reason_required", e.message);
  log("error", "unhandled error", { requestId: c.var.requestId, path: c.req.path, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  return errorResponse(c, 500, "internal_error", "Internal error; nothing was recorded if the status is not 200.");
});
