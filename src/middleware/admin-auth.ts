import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { Actor, Role } from "../lib/actor";
import type { AppEnv, Bindings } from "../env";
import { hmacSha256, stringsEqual, utf8 } from "../lib/crypto";
import { checkAdminToken, countRefusal } from "../admin/sign-in-guard";
import { accessJwtOf, accessSettings, type AccessRefusal, verifyAccessJwt } from "../admin/identity/access";
import { roleOf } from "../admin/identity/operators";
import { audit, auditSignIn } from "../audit/audit";
import { errorResponse } from "../lib/errors";
import { log } from "../lib/log";

/**
 * Admin authentication, one place for both doors (docs/identity.md). The caller is, in this order:
 * - a Cloudflare Access JWT (header `Cf-Access-Jwt-Assertion` or cookie `CF_Authorization`), when
 *   ACCESS_TEAM_DOMAIN and ACCESS_AUD are set (admin/identity/access.ts). One that fails any check
 *   answers 401 naming the check, whatever else the request carries (never a fall-through); a
 *   verified person without a role in the `operators` document answers 403 and is recorded;
 * - else, or when the request also carries one, a bearer token: ADMIN_TOKEN (actor `admin-token`,
 *   break-glass) or a named API token (actor `token:<name>`, its own role), both compared in the
 *   sign-in guard in constant time;
 * - else a dashboard session cookie (from the ADMIN_TOKEN sign-in form): for reads only on the JSON
 *   API, so a cookie alone can never change state through the API.
 * An Access identity changes state through the JSON API only from a request that is not
 * cross-site (Origin / Sec-Fetch-Site), as the Access cookie rides along with browser requests.
 * Every refusal is counted by the sign-in guard (admin/sign-in-guard.ts): past 10 from one address
 * group in 5 minutes, bearer requests and refused sign-ins from it answer 429 with Retry-After.
 * With ADMIN_TOKEN unset everything under /admin answers 503 (off), never open.
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

/** A caller verified by Cloudflare Access: its identity, role and the sign-in (JWT `iat`) its forms are bound to. */
export interface AccessCaller {
  id: string;
  role: Role;
  issuedAt: number;
}

/** Who is calling: a bearer-token client (ADMIN_TOKEN or a named API token), a signed-in browser, or a person or service through Cloudflare Access. */
export type AdminIdentity = { via: "bearer"; id: string; role: Role } | { via: "session"; session: AdminSession } | { via: "access"; access: AccessCaller };

/** Why a request has no identity: nothing usable, rate-limited, a refused Access JWT, a verified identity without a role, or Access misconfigured. */
type Refusal =
  | { kind: "none"; reason: "missing" | "wrong" | "expired" }
  | { kind: "locked"; retryAfterSeconds: number }
  | { kind: "access"; refusal: AccessRefusal }
  | { kind: "no-role"; identity: string }
  | { kind: "misconfigured"; message: string };

/** Hono environment of admin routes: the caller's identity is on `c.var.admin`. */
export interface AdminEnv {
  Bindings: Bindings;
  Variables: AppEnv["Variables"] & { admin: AdminIdentity };
}

const SAFE_METHOD = /^(GET|HEAD)$/;

/** JSON API guard: Access, bearer, or a session cookie for reads; 401/403/429 otherwise, 503 when the admin surface is off. */
export const requireAdmin = createMiddleware<AdminEnv>(async (c, next) => {
  const token = c.env.ADMIN_TOKEN;
  if (!token) return adminOff(c);
  const who = await identify(c, token, SAFE_METHOD.test(c.req.method));
  if ("kind" in who) {
    if (who.kind === "none") {
      c.header("WWW-Authenticate", 'Bearer realm="admin"');
      const message =
        who.reason === "expired" ? "This API token has expired; create a new one." : "A valid admin bearer token (or a Cloudflare Access sign-in) is required.";
      return errorResponse(c, 401, "unauthorized", message);
    }
    return refuse(c, who);
  }
  if (who.via === "access" && !SAFE_METHOD.test(c.req.method) && crossSite(c))
    return errorResponse(c, 403, "forbidden", "A change through the admin API signed in by Cloudflare Access must not come from another site.");
  c.set("admin", who);
  c.set("actor", actorOf(c, who, "api"));
  await next();
});

/** Dashboard page guard: Access, session cookie or bearer; the signed-out are redirected to the sign-in page. */
export const requireAdminPage = createMiddleware<AdminEnv>(async (c, next) => {
  const token = c.env.ADMIN_TOKEN;
  if (!token) return adminOff(c);
  const who = await identify(c, token, true);
  if ("kind" in who) {
    if (who.kind !== "none") return refuse(c, who);
    const url = new URL(c.req.url);
    const back = SAFE_METHOD.test(c.req.method) ? url.pathname + url.search : "/admin/";
    return c.redirect(`${LOGIN_PATH}?next=${encodeURIComponent(back)}`, SAFE_METHOD.test(c.req.method) ? 302 : 303);
  }
  c.set("admin", who);
  c.set("actor", actorOf(c, who, "dashboard"));
  if (who.via === "access") await noteAccessSignIn(c, token, who.access);
  await next();
});

/** Marks which Access sign-in (identity, JWT `iat`) this browser was last seen with, so each is recorded once. */
const ACCESS_SEEN_COOKIE = "relay_access_seen";

/**
 * Records the dashboard sign-in of a person (or service) through Cloudflare Access once per Access
 * sign-in: the first page seen with a new JWT `iat` writes the `session.sign-in` entry and a signed marker cookie.
 */
async function noteAccessSignIn(c: Context<AdminEnv>, token: string, who: AccessCaller): Promise<void> {
  const keys = await deriveKeys(token);
  const marker = toBase64Url(await hmacSha256(keys.csrf, utf8(`seen:${who.id}:${who.issuedAt}`))).slice(0, 22);
  if ((await getSignedCookie(c, keys.session, ACCESS_SEEN_COOKIE, SESSION_COOKIE_PREFIX)) === marker) return;
  await audit(c as unknown as Context<AppEnv>, { action: "session.sign-in", object: { method: "access" } });
  // Lax, not Strict: it only de-duplicates entries, and the navigation back from Access's sign-in is cross-site.
  await setSignedCookie(c, ACCESS_SEEN_COOKIE, marker, keys.session, {
    prefix: SESSION_COOKIE_PREFIX,
    path: SESSION_PATH,
    httpOnly: true,
    secure: true,
    sameSite: "Lax",
    maxAge: Math.floor(SESSION_TTL_MS / 1000),
  });
}

/** The caller as the audit trail names it: ADMIN_TOKEN is the break-glass owner credential. */
function actorOf(c: Context<AdminEnv>, who: AdminIdentity, via: Actor["via"]): Actor {
  const address = c.req.header("cf-connecting-ip") ?? null;
  if (who.via === "access") return { id: who.access.id, role: who.access.role, via, address };
  if (who.via === "bearer") return { id: who.id, role: who.role, via, address };
  return { id: "admin-token", role: "admin", via, address };
}

/** Answers a refused caller: 429 locked, 401 a refused Access JWT, 403 (recorded) a verified identity without a role, 503 Access misconfigured. */
async function refuse(c: Context<AdminEnv>, who: Exclude<Refusal, { kind: "none" }>): Promise<Response> {
  if (who.kind === "locked") return tooManyGuesses(c, who.retryAfterSeconds);
  if (who.kind === "misconfigured") return errorResponse(c, 503, "admin_disabled", who.message);
  if (who.kind === "access") {
    log("warn", "access token refused", { requestId: c.var.requestId, ip: c.req.header("cf-connecting-ip") ?? "unknown", check: who.refusal.check });
    if (who.refusal.status === 503) return errorResponse(c, 503, "upstream_error", who.refusal.message);
    return errorResponse(c, 401, "unauthorized", who.refusal.message, { check: who.refusal.check });
  }
  log("warn", "access sign-in refused: no role", { requestId: c.var.requestId, identity: who.identity });
  const page = c.req.path === "/admin" || c.req.path === "/admin/" || c.req.path.startsWith("/admin/ui");
  await auditSignIn(c as unknown as Context<AppEnv>, {
    action: "session.sign-in-refused",
    actor: who.identity,
    role: "none",
    via: page ? "dashboard" : "api",
    reason: "no role in the operators document",
  });
  return errorResponse(
    c,
    403,
    "forbidden",
    `${who.identity} is signed in through Cloudflare Access but has no role here; an admin adds it to the operators document.`,
  );
}

/** True when a browser says the request came from another site (Sec-Fetch-Site, else Origin). */
function crossSite(c: Context): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site) return site !== "same-origin" && site !== "none";
  const origin = c.req.header("origin");
  return origin !== undefined && origin !== new URL(c.req.url).origin;
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

/**
 * What a browser's forms are bound to: the session's id, or an Access sign-in (identity and the
 * JWT's `iat`); null for bearer callers, who cannot be forged into a request.
 */
export function formBinding(who: AdminIdentity): string | null {
  if (who.via === "session") return who.session.id;
  if (who.via === "access") return `access:${who.access.id}:${who.access.issuedAt}`;
  return null;
}

/** The CSRF token of a session or Access sign-in (formBinding): base64url HMAC of it under the CSRF key. */
export async function csrfToken(env: Bindings, binding: string): Promise<string> {
  const keys = await deriveKeys(env.ADMIN_TOKEN!);
  return toBase64Url(await hmacSha256(keys.csrf, utf8(`csrf:${binding}`)));
}

/** Constant-time check of a submitted CSRF token against the binding's. */
export async function isCsrfToken(env: Bindings, binding: string, candidate: string): Promise<boolean> {
  return stringsEqual(candidate, await csrfToken(env, binding));
}

/** The caller's identity, or why there is none (see the file's opening comment for the order). */
async function identify(c: Context<AdminEnv>, token: string, acceptCookie: boolean): Promise<AdminIdentity | Refusal> {
  const address = c.req.header("cf-connecting-ip");
  let access: AccessCaller | { noRole: string } | null = null;
  const settings = accessSettings(c.env);
  if (!settings.ok) return { kind: "misconfigured", message: settings.error };
  const jwt = settings.value ? accessJwtOf(c.req.raw.headers) : null;
  if (settings.value && jwt) {
    const verified = await verifyAccessJwt(settings.value, jwt);
    if (!verified.ok) {
      if (verified.error.status === 401) {
        const counted = await countRefusal(c.env, address, `access_${verified.error.check}`);
        if (counted.locked !== null) return { kind: "locked", retryAfterSeconds: counted.locked };
      }
      return { kind: "access", refusal: verified.error };
    }
    const role = await roleOf(c.env, verified.value.id);
    access = role ? { id: verified.value.id, role, issuedAt: verified.value.issuedAt } : { noRole: verified.value.id };
  }
  const bearer = /^Bearer\s+(.+)$/i.exec((c.req.header("authorization") ?? "").trim());
  if (bearer) {
    const checked = await checkAdminToken(c.env, address, bearer[1]!);
    if (checked.result === "right") {
      const h = checked.holder;
      return h.kind === "admin-token" ? { via: "bearer", id: "admin-token", role: "admin" } : { via: "bearer", id: `token:${h.name}`, role: h.role };
    }
    if (checked.result === "locked") return { kind: "locked", retryAfterSeconds: checked.retryAfterSeconds };
    log("warn", "admin bearer token refused", {
      requestId: c.var.requestId,
      ip: address ?? "unknown",
      path: c.req.path,
      expired: checked.result === "expired",
    });
    return { kind: "none", reason: checked.result };
  }
  if (access && "noRole" in access) {
    const counted = await countRefusal(c.env, address, "no_role");
    if (counted.locked !== null) return { kind: "locked", retryAfterSeconds: counted.locked };
    return { kind: "no-role", identity: access.noRole };
  }
  if (access) return { via: "access", access };
  if (!acceptCookie) return { kind: "none", reason: "missing" };
  const session = await readSession(c, token, Date.now());
  return session ? { via: "session", session } : { kind: "none", reason: "missing" };
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
  log("warn", "admin sign-in rate-limited", { requestId: c.var.requestId, ip: c.req.header("cf-connecting-ip") ?? "unknown", retryAfterSeconds });
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
