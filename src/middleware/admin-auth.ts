import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { Actor } from "../lib/actor";
import type { AppEnv, Bindings } from "../env";
import { hmacSha256, stringsEqual, utf8 } from "../lib/crypto";
import { checkAdminToken } from "../admin/sign-in-guard";
import { errorResponse } from "../lib/errors";
import { log } from "../lib/log";

/**
 * Admin authentication, one place for both doors:
 * - the JSON API takes `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time), and a
 *   dashboard session cookie for reads (GET/HEAD) only, so a cookie alone can never change state
 *   through the API;
 * - the dashboard takes the session cookie (or the bearer) and sends the signed-out to the sign-in page.
 * Every bearer token is counted by the sign-in guard before it is compared (admin/sign-in-guard.ts):
 * past 10 wrong ones from one address group in 5 minutes, bearer requests from it answer 429 with
 * Retry-After. With ADMIN_TOKEN unset everything under /admin answers 503 (off), never open.
 *
 * A session is `<sid>.<expires>` (random 128-bit id, epoch ms) in a cookie signed with
 * HMAC-SHA256 under a key derived from ADMIN_TOKEN: the token itself never leaves the server,
 * and rotating it invalidates every session. The CSRF token of a session is an HMAC of its id
 * under a second derived key. See docs/dashboard.md.
 */

/** Name of the session cookie (`__Secure-` prefix: browsers only accept it with Secure). */
export const SESSION_COOKIE = "relay_admin";
const SESSION_COOKIE_PREFIX = "secure" as const;
/** Lifetime of a session, ms (absolute, not sliding): one working day. */
export const SESSION_TTL_MS = 8 * 3_600_000;
/** Where the session cookie is sent. */
const SESSION_PATH = "/admin";
/** Where the signed-out are sent. */
export const LOGIN_PATH = "/admin/login";

/** A verified dashboard session; times are epoch ms. */
export interface AdminSession {
  id: string;
  expiresAt: number;
}

/** Who is calling: a bearer-token client or a signed-in browser. */
export type AdminIdentity = { via: "bearer" } | { via: "session"; session: AdminSession };

/** Hono environment of admin routes: the caller's identity is on `c.var.admin`. */
export interface AdminEnv {
  Bindings: Bindings;
  Variables: AppEnv["Variables"] & { admin: AdminIdentity };
}

const SAFE_METHOD = /^(GET|HEAD)$/;

/** JSON API guard: bearer, or a session cookie for reads; 401 otherwise, 503 when the admin surface is off. */
export const requireAdmin = createMiddleware<AdminEnv>(async (c, next) => {
  const token = c.env.ADMIN_TOKEN;
  if (!token) return adminOff(c);
  const who = await identify(c, token, SAFE_METHOD.test(c.req.method));
  if (who && "locked" in who) return tooManyGuesses(c, who.locked);
  if (!who) {
    c.header("WWW-Authenticate", 'Bearer realm="admin"');
    return errorResponse(c, 401, "unauthorized", "A valid admin bearer token is required.");
  }
  c.set("admin", who);
  c.set("actor", actorOf(c, "api"));
  await next();
});

/** Dashboard page guard: session cookie or bearer; the signed-out are redirected to the sign-in page. */
export const requireAdminPage = createMiddleware<AdminEnv>(async (c, next) => {
  const token = c.env.ADMIN_TOKEN;
  if (!token) return adminOff(c);
  const who = await identify(c, token, true);
  if (who && "locked" in who) return tooManyGuesses(c, who.locked);
  if (!who) {
    const url = new URL(c.req.url);
    const back = SAFE_METHOD.test(c.req.method) ? url.pathname + url.search : "/admin/";
    return c.redirect(`${LOGIN_PATH}?next=${encodeURIComponent(back)}`, SAFE_METHOD.test(c.req.method) ? 302 : 303);
  }
  c.set("admin", who);
  c.set("actor", actorOf(c, "dashboard"));
  await next();
});

/** The caller as the audit trail names it: ADMIN_TOKEN is the break-glass owner credential. */
function actorOf(c: Context<AdminEnv>, via: Actor["via"]): Actor {
  return { id: "admin-token", role: "admin", via, address: c.req.header("cf-connecting-ip") ?? null };
}

/** Guard of the sign-in routes: only checks that the admin surface is on. */
export const requireAdminEnabled = createMiddleware<AdminEnv>(async (c, next) => {
  if (!c.env.ADMIN_TOKEN) return adminOff(c);
  await next();
});

/** Starts a session: sets the signed cookie (HttpOnly, Secure, SameSite=Strict, Path=/admin). */
export async function startSession(c: Context<AdminEnv>, now = Date.now()): Promise<AdminSession> {
  const session: AdminSession = { id: randomId(), expiresAt: now + SESSION_TTL_MS };
  const keys = await deriveKeys(c.env.ADMIN_TOKEN!);
  await setSignedCookie(c, SESSION_COOKIE, `${session.id}.${session.expiresAt}`, keys.session, {
    prefix: SESSION_COOKIE_PREFIX,
    path: SESSION_PATH,
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    maxAge: Math.floor(SESSION_TTL_MS / 1000),
  });
  return session;
}

/** Ends the browser's session (clears the cookie). Sessions are stateless: rotate ADMIN_TOKEN to end all of them. */
export function endSession(c: Context<AdminEnv>): void {
  deleteCookie(c, SESSION_COOKIE, { prefix: SESSION_COOKIE_PREFIX, path: SESSION_PATH, httpOnly: true, secure: true, sameSite: "Strict" });
}

/** The CSRF token of a session: base64url HMAC of its id under the CSRF key. */
export async function csrfToken(env: Bindings, session: AdminSession): Promise<string> {
  const keys = await deriveKeys(env.ADMIN_TOKEN!);
  return toBase64Url(await hmacSha256(keys.csrf, utf8(`csrf:${session.id}`)));
}

/** Constant-time check of a submitted CSRF token against the session's. */
export async function isCsrfToken(env: Bindings, session: AdminSession, candidate: string): Promise<boolean> {
  return stringsEqual(candidate, await csrfToken(env, session));
}

/** The caller's identity; null when there is none; `locked` (seconds to wait) when a bearer token was not compared because its address group is locked out. */
async function identify(c: Context<AdminEnv>, token: string, acceptCookie: boolean): Promise<AdminIdentity | { locked: number } | null> {
  const bearer = /^Bearer\s+(.+)$/i.exec((c.req.header("authorization") ?? "").trim());
  if (bearer) {
    const address = c.req.header("cf-connecting-ip");
    const checked = await checkAdminToken(c.env, address, bearer[1]!);
    if (checked.result === "right") return { via: "bearer" };
    if (checked.result === "locked") return { locked: checked.retryAfterSeconds };
    log("warn", "admin bearer token refused", { requestId: c.var.requestId, ip: address ?? "unknown", path: c.req.path });
    return null;
  }
  if (!acceptCookie) return null;
  const session = await readSession(c, token, Date.now());
  return session ? { via: "session", session } : null;
}

/** The session of the request's cookie when its signature is valid under the current token and it has not expired. */
async function readSession(c: Context<AdminEnv>, token: string, now: number): Promise<AdminSession | null> {
  const keys = await deriveKeys(token);
  const value = await getSignedCookie(c, keys.session, SESSION_COOKIE, SESSION_COOKIE_PREFIX);
  if (!value) return null;
  const m = /^([A-Za-z0-9_-]{22})\.(\d{13,15})$/.exec(value);
  if (!m) return null;
  const expiresAt = Number(m[2]);
  return expiresAt > now && expiresAt <= now + SESSION_TTL_MS ? { id: m[1]!, expiresAt } : null;
}

/** Keys derived from ADMIN_TOKEN with HMAC-SHA256 and distinct labels (session signing, CSRF). */
async function deriveKeys(token: string): Promise<{ session: Uint8Array; csrf: Uint8Array }> {
  const secret = utf8(token);
  const [session, csrf] = await Promise.all([
    hmacSha256(secret, utf8("centrepoint-edge-relay/dashboard/session/v1")),
    hmacSha256(secret, utf8("centrepoint-edge-relay/dashboard/csrf/v1")),
  ]);
  return { session, csrf };
}

function tooManyGuesses(c: Context<AdminEnv>, retryAfterSeconds: number) {
  log("warn", "admin bearer token rate-limited", { requestId: c.var.requestId, ip: c.req.header("cf-connecting-ip") ?? "unknown", retryAfterSeconds });
  c.header("Retry-After", String(retryAfterSeconds));
  return errorResponse(c, 429, "rate_limited", `Too many wrong admin tokens from this address; try again in ${retryAfterSeconds} s.`);
}

function adminOff(c: Context) {
  return errorResponse(c, 503, "admin_disabled", "The admin API is off: set the ADMIN_TOKEN secret to enable it.");
}

function randomId(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(16)));
}

function toBase64Url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
