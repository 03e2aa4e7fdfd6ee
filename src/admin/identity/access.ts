import { createLocalJWKSet, decodeProtectedHeader, errors, type JSONWebKeySet, jwtVerify } from "jose";
import { z } from "zod";
import type { Bindings } from "../../env";
import { err, ok, type Result } from "../../lib/result";
import { isLoopbackHost } from "../../lib/url-policy";

/**
 * Cloudflare Access in front of /admin (docs/identity.md). A request is signed by Access with an
 * RS256 JWT in the `Cf-Access-Jwt-Assertion` header (or the `CF_Authorization` cookie); it is
 * verified against the team's signing keys at `<ACCESS_TEAM_DOMAIN>/cdn-cgi/access/certs`:
 * signature (RS256 only), `iss` = ACCESS_TEAM_DOMAIN, `aud` contains ACCESS_AUD, `exp` and `nbf`.
 * The keys are cached per isolate for KEYS_TTL_MS and fetched again on an unknown key id at most
 * once per KEYS_REFETCH_MS (key rotation). The token itself is never logged nor echoed.
 */

/** How long fetched signing keys are used before they are fetched again, ms. */
export const KEYS_TTL_MS = 60 * 60_000;
/** At most one fetch per this many ms because of an unknown key id, ms. */
export const KEYS_REFETCH_MS = 60_000;
/** Largest accepted certs document, bytes. */
const MAX_CERTS_BYTES = 256 * 1024;
/** Time allowed for fetching the certs, ms. */
const CERTS_TIMEOUT_MS = 5_000;
/** Name of the cookie Access sets in the browser. */
export const ACCESS_COOKIE = "CF_Authorization";
/** Header Access adds to every request it lets through. */
export const ACCESS_HEADER = "cf-access-jwt-assertion";

/** Where Access is: its team domain (origin, no trailing slash) and this application's audience tag. */
export interface AccessSettings {
  teamDomain: string;
  audience: string;
}

/**
 * Access's settings from the Worker's vars: null when both are empty (Access off), an error when
 * only one is set or the team domain is not https:// (http:// only to loopback with ALLOW_HTTP_TARGETS).
 */
export function accessSettings(env: Bindings): Result<AccessSettings | null, string> {
  const domain = (env.ACCESS_TEAM_DOMAIN ?? "").trim();
  const audience = (env.ACCESS_AUD ?? "").trim();
  if (!domain && !audience) return ok(null);
  if (!domain || !audience) return err("Cloudflare Access is half configured: set both ACCESS_TEAM_DOMAIN and ACCESS_AUD, or neither.");
  let url: URL;
  try {
    url = new URL(domain);
  } catch {
    return err("ACCESS_TEAM_DOMAIN is not a URL (e.g. https://acme.cloudflareaccess.com).");
  }
  const httpAllowed = url.protocol === "http:" && env.ALLOW_HTTP_TARGETS === "true" && isLoopbackHost(url.hostname);
  if (url.protocol !== "https:" && !httpAllowed)
    return err("ACCESS_TEAM_DOMAIN must be an https:// URL (http:// only to loopback with ALLOW_HTTP_TARGETS=true).");
  return ok({ teamDomain: url.origin, audience });
}

/** The Access JWT of a request: the header, else the cookie; null when neither is there. */
export function accessJwtOf(headers: Headers): string | null {
  const header = headers.get(ACCESS_HEADER)?.trim();
  if (header) return header;
  for (const part of (headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === ACCESS_COOKIE) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/** Who a verified Access JWT names: `alice@site.org` (a person, lower-cased) or `service:<common_name>` (a service token). */
export interface AccessIdentity {
  id: string;
  /** The token's `iat` (epoch s): one Access sign-in. */
  issuedAt: number;
}

/** Which check a refused JWT failed. */
export type AccessCheck = "format" | "alg" | "kid" | "signature" | "iss" | "aud" | "exp" | "nbf" | "identity";

/** A refused JWT (401, `check` and a message naming the check), or keys that could not be fetched (503). */
export type AccessRefusal = { status: 401; check: AccessCheck; message: string } | { status: 503; check: "keys"; message: string };

const refused = (check: AccessCheck, what: string): AccessRefusal => ({ status: 401, check, message: `Cloudflare Access token refused: ${what}.` });

const claimsSchema = z.object({
  email: z.string().min(3).max(320).optional(),
  common_name: z.string().min(1).max(256).optional(),
  iat: z.number().optional(),
});

/** Verifies an Access JWT (see the file's opening comment); `now` is epoch ms. */
export async function verifyAccessJwt(settings: AccessSettings, token: string, now = Date.now()): Promise<Result<AccessIdentity, AccessRefusal>> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return err(refused("format", "it is not a JWT"));
  }
  if (header.alg !== "RS256") return err(refused("alg", `its algorithm is ${JSON.stringify(String(header.alg ?? "none"))}; only RS256 is accepted`));
  if (typeof header.kid !== "string" || !header.kid) return err(refused("kid", "it names no signing key (kid)"));
  const keys = await keysWith(settings.teamDomain, header.kid, now);
  if (!keys.ok) return err({ status: 503, check: "keys", message: keys.error });
  if (!keys.value) return err(refused("kid", `its signing key ${JSON.stringify(header.kid.slice(0, 80))} is not one of the team's keys`));
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet(keys.value), {
      algorithms: ["RS256"],
      issuer: settings.teamDomain,
      audience: settings.audience,
      currentDate: new Date(now),
      requiredClaims: ["exp"],
    }));
  } catch (e) {
    return err(refusalOf(e));
  }
  const claims = claimsSchema.safeParse(payload);
  if (!claims.success) return err(refused("identity", "its email or common_name claim is malformed"));
  const issuedAt = claims.data.iat ?? 0;
  if (claims.data.email) return ok({ id: claims.data.email.toLowerCase(), issuedAt });
  if (claims.data.common_name) return ok({ id: `service:${claims.data.common_name}`, issuedAt });
  return err(refused("identity", "it names no person (email) and no service token (common_name)"));
}

function refusalOf(e: unknown): AccessRefusal {
  if (e instanceof errors.JWTExpired) return refused("exp", "it has expired");
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === "iss") return refused("iss", "its issuer is not ACCESS_TEAM_DOMAIN");
    if (e.claim === "aud") return refused("aud", "its audience does not include this application (ACCESS_AUD)");
    if (e.claim === "nbf") return refused("nbf", "it is not valid yet (nbf)");
    if (e.claim === "exp") return refused("exp", "it has no expiry (exp)");
    return refused("format", `its ${e.claim} claim is invalid`);
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return refused("alg", "only RS256 is accepted");
  if (e instanceof errors.JWSSignatureVerificationFailed) return refused("signature", "its signature does not verify");
  if (e instanceof errors.JWKSNoMatchingKey) return refused("kid", "no team key matches it");
  return refused("format", "it is malformed");
}

// ---- the team's signing keys, per isolate ------------------------------------------------------

interface KeyCache {
  jwks: JSONWebKeySet;
  /** When the keys were fetched, epoch ms. */
  fetchedAt: number;
  /** When a fetch was last tried, epoch ms (successful or not). */
  triedAt: number;
}
const keyCache = new Map<string, KeyCache>();

/** Forgets the cached keys (tests; a new isolate starts empty). */
export function clearAccessKeys(): void {
  keyCache.clear();
}

const jwksSchema = z.object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional() })).max(50) });

/**
 * The team's keys when one has key id `kid` (null when none has, even after a fetch allowed by
 * KEYS_REFETCH_MS); an error when they could not be fetched and none are cached. Stale keys are
 * used while the certs endpoint fails, and a fetch is tried at most once per KEYS_REFETCH_MS.
 */
async function keysWith(teamDomain: string, kid: string, now: number): Promise<Result<JSONWebKeySet | null, string>> {
  const cached = keyCache.get(teamDomain);
  const has = (jwks: JSONWebKeySet) => jwks.keys.some((k) => k.kid === kid);
  if (cached) {
    const fresh = now - cached.fetchedAt < KEYS_TTL_MS;
    const mayTry = now - cached.triedAt >= KEYS_REFETCH_MS;
    if (!mayTry || (fresh && has(cached.jwks))) return ok(has(cached.jwks) ? cached.jwks : null);
  }
  const fetched = await fetchKeys(teamDomain);
  if (!fetched.ok) {
    if (!cached) return err(fetched.error);
    cached.triedAt = now;
    return ok(has(cached.jwks) ? cached.jwks : null);
  }
  keyCache.set(teamDomain, { jwks: fetched.value, fetchedAt: now, triedAt: now });
  return ok(has(fetched.value) ? fetched.value : null);
}

async function fetchKeys(teamDomain: string): Promise<Result<JSONWebKeySet, string>> {
  const url = `${teamDomain}/cdn-cgi/access/certs`;
  try {
    const res = await fetch(url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(CERTS_TIMEOUT_MS) });
    if (!res.ok) return err(`Cloudflare Access signing keys could not be fetched (${url} answered ${res.status}).`);
    const text = await res.text();
    if (text.length > MAX_CERTS_BYTES) return err(`Cloudflare Access signing keys could not be read (${url} answered more than ${MAX_CERTS_BYTES} bytes).`);
    const parsed = jwksSchema.safeParse(JSON.parse(text));
    if (!parsed.success) return err(`Cloudflare Access signing keys could not be read (${url} is not a key set).`);
    return ok(parsed.data as unknown as JSONWebKeySet);
  } catch (e) {
    return err(`Cloudflare Access signing keys could not be fetched from ${url}: ${e instanceof Error ? e.message : String(e)}.`);
  }
}
