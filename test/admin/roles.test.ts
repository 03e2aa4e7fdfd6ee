import { env } from "cloudflare:test";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { declaredRole } from "../../src/admin/authz";
import { trailOf } from "../../src/audit/audit";
import { alerts } from "../../src/admin/routes/alerts";
import { auditRoutes } from "../../src/admin/routes/audit";
import { deliveries } from "../../src/admin/routes/deliveries";
import { alerting, issues } from "../../src/admin/routes/issues";
import { metrics } from "../../src/admin/routes/metrics";
import { replay } from "../../src/admin/routes/replay";
import { sources } from "../../src/admin/routes/sources";
import { operators } from "../../src/admin/routes/operators";
import { targets } from "../../src/admin/routes/targets";
import { tokens } from "../../src/admin/routes/tokens";
import { trends } from "../../src/admin/routes/trends";
import { app } from "../../src/app";
import type { AppEnv } from "../../src/env";
import { ROLES, type Role } from "../../src/lib/actor";
import { envWithBrokenTrail } from "../support/trail";

/**
 * The role every route of the app declares (requireRole), read from the app's own route list: a
 * route added without a role, or with another one than its class needs, fails here until it is
 * given one and a row below. Classes (issue 18, docs/audit.md): reads `viewer`; delivery bodies,
 * enrichment and the audit trail `operator`; replay, resume, release, retry enrichment, reconcile,
 * integrity runs `operator`; configuration documents `admin`. `public` routes take no admin caller.
 */
const EXPECTED: Record<string, Role | "public"> = {
  "GET /": "public",
  "GET /healthz": "public",
  "POST /webhooks/:source": "public",
  "GET /files/:source/:fileId": "public",
  "GET /admin/login": "public",
  "POST /admin/login": "public",
  "POST /admin/logout": "public",
  // dashboard
  "GET /admin": "viewer",
  "GET /admin/": "viewer",
  "GET /admin/ui": "viewer",
  "GET /admin/ui/deliveries": "viewer",
  "GET /admin/ui/deliveries/:source/:id": "operator",
  "GET /admin/ui/deliveries/:source/:id/preview": "operator",
  "POST /admin/ui/deliveries/:source/:id/replay": "operator",
  "POST /admin/ui/deliveries/:source/:id/enrichment/retry": "operator",
  "POST /admin/ui/deliveries/:source/:id/enrichment/release": "operator",
  "GET /admin/ui/targets/:id": "viewer",
  "POST /admin/ui/targets/:id/resume": "operator",
  "POST /admin/ui/targets/:id/replay-dead": "operator",
  "POST /admin/ui/targets/:id/enable": "admin",
  "POST /admin/ui/targets/:id/disable": "admin",
  "GET /admin/ui/sources/:id": "viewer",
  "POST /admin/ui/sources/:id/reconcile": "operator",
  "POST /admin/ui/sources/:id/registration": "viewer",
  "POST /admin/ui/sources/:id/verify": "operator",
  "GET /admin/ui/audit": "operator",
  "GET /admin/ui/issues": "viewer",
  "POST /admin/ui/issues/:id/acknowledge": "operator",
  "POST /admin/ui/issues/:id/resolve": "operator",
  "GET /admin/ui/alerts": "viewer",
  "GET /admin/ui/people": "admin",
  "POST /admin/ui/people/roles": "admin",
  "POST /admin/ui/people/roles/remove": "admin",
  "POST /admin/ui/people/tokens": "admin",
  "POST /admin/ui/people/tokens/:id/revoke": "admin",
  // API
  "GET /admin/sources": "viewer",
  "GET /admin/sources/:id": "viewer",
  "PUT /admin/sources/:id": "admin",
  "DELETE /admin/sources/:id": "admin",
  "GET /admin/sources/:id/lifecycle": "viewer",
  "GET /admin/sources/:id/export": "operator",
  "GET /admin/sources/:id/integrity": "viewer",
  "POST /admin/sources/:id/integrity": "operator",
  "GET /admin/sources/:id/handshakes": "viewer",
  "GET /admin/sources/:id/raw-requests": "viewer",
  "GET /admin/sources/:id/downloads": "viewer",
  "POST /admin/sources/:id/reconcile": "operator",
  "GET /admin/sources/:id/reconcile": "viewer",
  "GET /admin/sources/:id/registration": "viewer",
  "GET /admin/targets": "viewer",
  "GET /admin/targets/:id": "viewer",
  "PUT /admin/targets/:id": "admin",
  "DELETE /admin/targets/:id": "admin",
  "GET /admin/targets/:id/dead": "viewer",
  "GET /admin/targets/:id/health": "viewer",
  "POST /admin/targets/:id/resume": "operator",
  "POST /admin/targets/:id/preview": "operator",
  "GET /admin/deliveries": "viewer",
  "GET /admin/deliveries/:source/:id": "operator",
  "POST /admin/deliveries/:source/:id/replay": "operator",
  "POST /admin/deliveries/:source/:id/enrichment/retry": "operator",
  "POST /admin/deliveries/:source/:id/enrichment/release": "operator",
  "POST /admin/replay": "operator",
  "GET /admin/metrics": "viewer",
  "GET /admin/trends": "viewer",
  "GET /admin/alerts": "viewer",
  "GET /admin/alerts/:id": "viewer",
  "PUT /admin/alerts/:id": "admin",
  "DELETE /admin/alerts/:id": "admin",
  "GET /admin/alerts/:id/health": "viewer",
  "POST /admin/alerts/:id/test": "operator",
  "GET /admin/audit": "operator",
  "GET /admin/audit/export": "operator",
  "GET /admin/audit/status": "operator",
  "POST /admin/tokens": "admin",
  "GET /admin/tokens": "admin",
  "DELETE /admin/tokens/:id": "admin",
  "GET /admin/operators": "admin",
  "PUT /admin/operators": "admin",
  "GET /admin/issues": "viewer",
  "GET /admin/issues/:id": "viewer",
  "POST /admin/issues/:id/acknowledge": "operator",
  "POST /admin/issues/:id/resolve": "operator",
  "GET /admin/alerting": "viewer",
  "PUT /admin/alerting": "admin",
  "GET /admin/openapi.json": "viewer",
};

/** Every route of the app (middleware registered for ALL methods left out) with the roles its handlers declare, in order. */
function appRoutes(): Map<string, { roles: (Role | undefined)[] }> {
  const routes = new Map<string, { roles: (Role | undefined)[] }>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    const key = `${r.method} ${r.path}`;
    const entry = routes.get(key) ?? { roles: [] };
    entry.roles.push(declaredRole(r.handler));
    routes.set(key, entry);
  }
  return routes;
}

describe("role of every route", () => {
  const routes = appRoutes();

  it("covers every route of the app, and every row names a route that exists", () => {
    const missing = [...routes.keys()].filter((k) => !(k in EXPECTED));
    expect(missing, "a route without a row here: give it requireRole(...) and add it with its role").toEqual([]);
    expect(Object.keys(EXPECTED).filter((k) => !routes.has(k))).toEqual([]);
  });

  it.each(Object.entries(EXPECTED))("%s declares %s", (key, expected) => {
    const route = routes.get(key);
    expect(route).toBeDefined();
    const declared = route!.roles.filter((r): r is Role => r !== undefined);
    if (expected === "public") return expect(declared).toEqual([]);
    expect(declared).toEqual([expected]);
    // The guard runs before the route's own handler (the last one).
    expect(route!.roles.indexOf(expected)).toBeLessThan(route!.roles.length - 1);
  });
});

/** The API's resource apps as app.ts mounts them, behind a caller of `role` (as the admin authentication would set it). */
function apiAs(role: Role) {
  const wrapped = new Hono<AppEnv>();
  wrapped.use(async (c, next) => {
    c.set("requestId", "roles-test");
    c.set("actor", { id: `token:${role}-bot`, role, via: "api", address: null });
    await next();
  });
  wrapped.route("/admin/sources", sources);
  wrapped.route("/admin/targets", targets);
  wrapped.route("/admin/deliveries", deliveries);
  wrapped.route("/admin/replay", replay);
  wrapped.route("/admin/metrics", metrics);
  wrapped.route("/admin/trends", trends);
  wrapped.route("/admin/audit", auditRoutes);
  wrapped.route("/admin/tokens", tokens);
  wrapped.route("/admin/operators", operators);
  wrapped.route("/admin/issues", issues);
  wrapped.route("/admin/alerting", alerting);
  wrapped.route("/admin/alerts", alerts);
  return wrapped;
}

describe("a caller below a route's role", () => {
  const api = Object.entries(EXPECTED).filter(([key, role]) => role !== "public" && / \/admin\/(?!ui|openapi|$)/.test(key) && !/ \/admin\/?$/.test(key));

  it.each(api.filter(([, role]) => role !== "viewer"))("%s (%s) answers 403 forbidden, naming the caller, before anything runs", async (key, need) => {
    const [method, path] = key.split(" ") as [string, string];
    const below = ROLES[ROLES.indexOf(need as Role) - 1]!;
    const res = await apiAs(below).request(
      path.replace(/:[a-z]+/gi, "x"),
      { method, headers: { "content-type": "application/json" }, body: method === "GET" ? undefined : "{}" },
      env,
    );
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "forbidden", message: `token:${below}-bot has the role ${below}; this needs ${need}.` });
  });

  it("records the refused attempt in the audit trail before answering: who, their role, the route and the role it needs", async () => {
    const before = (await trailOf(env).list({ action: "access.refused", limit: 100 })).items.length;
    const res = await apiAs("viewer").request("/admin/replay", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }, env);
    expect(res.status).toBe(403);
    const { items } = await trailOf(env).list({ action: "access.refused", limit: 100 });
    expect(items).toHaveLength(before + 1);
    expect({ ...items[0], object: JSON.parse(String(items[0]!.object)) }).toMatchObject({
      actor: "token:viewer-bot",
      role: "viewer",
      via: "api",
      action: "access.refused",
      object: { route: "POST /admin/replay", needs: "operator" },
    });
  });

  it("still refuses with 403 (not 503) when the trail cannot record the refusal; nothing runs", async () => {
    const res = await apiAs("viewer").request(
      "/admin/targets/roles-refused",
      { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: "https://edc.example.org/in" }) },
      envWithBrokenTrail(),
    );
    expect(res.status).toBe(403);
    expect(await env.CONFIG.get("target:roles-refused")).toBeNull();
  });

  it("is let through at its role: a viewer reads, an operator reads the trail, an admin writes", async () => {
    expect((await apiAs("viewer").request("/admin/sources", {}, env)).status).toBe(200);
    expect((await apiAs("operator").request("/admin/audit?limit=1", {}, env)).status).toBe(200);
    const put = await apiAs("admin").request(
      "/admin/targets/roles-t",
      { method: "PUT", body: JSON.stringify({ url: "https://edc.example.org/in" }), headers: { "content-type": "application/json" } },
      env,
    );
    expect(put.status).toBe(201);
  });
});
