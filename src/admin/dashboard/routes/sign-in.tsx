import { type Context, Hono } from "hono";
import type { AppEnv } from "../../../env";
import { log } from "../../../lib/log";
import { type AdminEnv, endSession, requireAdminEnabled, requireAdminPage, startSession } from "../../../middleware/admin-auth";
import { audit, auditSignIn } from "../../../audit/audit";
import { accessSettings } from "../../identity/access";
import { checkAdminToken } from "../../sign-in-guard";
import { checkCsrfToken, sameOrigin } from "../csrf";
import { LoginPage } from "../pages/login";
import { render } from "../render";

/**
 * `/admin/login` and `/admin/logout`: the dashboard's session, started by the admin token (throttled
 * per address; API tokens are refused here), or a Cloudflare Access sign-in (admin-auth.ts). Sign-in,
 * sign-out and refused sign-ins are recorded through audit().
 */
export const signIn = new Hono<AdminEnv>();

signIn.get("/login", requireAdminEnabled, async (c) => {
  const notice = c.req.query("done") === "signed-out" ? "You are signed out." : null;
  const access = accessSettings(c.env);
  const behindAccess = access.ok && access.value !== null;
  return render(c, (page) => <LoginPage page={page} next={safeNext(c.req.query("next"))} error={null} notice={notice} access={behindAccess} />);
});

signIn.post("/login", requireAdminEnabled, sameOrigin, async (c) => {
  const form = await c.req.parseBody();
  const next = safeNext(typeof form.next === "string" ? form.next : undefined);
  const token = typeof form.token === "string" ? form.token : "";
  const address = c.req.header("cf-connecting-ip");
  const checked = await checkAdminToken(c.env, address, token);
  if (checked.result === "locked") {
    log("warn", "dashboard sign-in rate-limited", { requestId: c.var.requestId, ip: address ?? "unknown", retryAfterSeconds: checked.retryAfterSeconds });
    c.header("Retry-After", String(checked.retryAfterSeconds));
    const wait = `Too many failed sign-ins from this address. Try again in ${Math.ceil(checked.retryAfterSeconds / 60)} min.`;
    return render(c, (page) => <LoginPage page={page} next={next} error={wait} notice={null} />, 429);
  }
  if (checked.result !== "right" || checked.holder.kind !== "admin-token") {
    log("warn", "dashboard sign-in refused", { requestId: c.var.requestId, ip: address ?? "unknown" });
    // Wrong tokens are bounded per address group by the guard; locked-out attempts (above) are only logged, so a flood cannot fill the trail.
    await auditSignIn(c, {
      action: "session.sign-in-refused",
      actor: "unknown",
      role: "none",
      via: "dashboard",
      object: { method: "admin-token" },
      reason: "not the admin token",
    });
    const error =
      checked.result === "right" || checked.result === "expired"
        ? "API tokens are for the API; sign in with the admin token or through Cloudflare Access."
        : "That is not the admin token.";
    return render(c, (page) => <LoginPage page={page} next={next} error={error} notice={null} />, 401);
  }
  c.set("actor", { id: "admin-token", role: "admin", via: "dashboard", address: address ?? null });
  await audit(asApp(c), { action: "session.sign-in", object: { method: "admin-token" } });
  await startSession(c);
  log("info", "dashboard sign-in", { requestId: c.var.requestId, ip: c.req.header("cf-connecting-ip") ?? null });
  return c.redirect(next, 303);
});

/** Signs out: ends the relay's session; a person signed in through Cloudflare Access is sent on to Access's own sign-out. */
signIn.post("/logout", requireAdminEnabled, sameOrigin, requireAdminPage, checkCsrfToken, async (c) => {
  await audit(asApp(c), { action: "session.sign-out", object: { method: c.var.admin.via } });
  endSession(c);
  if (c.var.admin.via === "access") return c.redirect("/cdn-cgi/access/logout", 303);
  return c.redirect("/admin/login?done=signed-out", 303);
});

/** The dashboard's context as the audit trail reads it (the same request; AdminEnv only adds `admin`). */
const asApp = (c: Context<AdminEnv>) => c as unknown as Context<AppEnv>;

/** Where to go after signing in: a path under /admin on this origin, else the overview. */
export function safeNext(next: string | undefined): string {
  if (!next) return "/admin/";
  try {
    const base = "https://relay.invalid";
    const u = new URL(next, base);
    if (u.origin !== base || !(u.pathname === "/admin" || u.pathname.startsWith("/admin/")) || u.pathname.startsWith("/admin/login")) return "/admin/";
    return u.pathname + u.search;
  } catch {
    return "/admin/";
  }
}
