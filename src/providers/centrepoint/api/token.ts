/**
 * OAuth2 client-credentials tokens of the CentrePoint V3 API, cached in isolate memory.
 *
 * Contracts:
 * - One cache entry per (auth URL, API URL, client id, client secret, scope string): a token is
 *   only ever sent to the API URL of a client holding the same credentials as the one it was issued
 *   to. The key holds no secret: the client secret enters it as a fingerprint (16 hex digits of a
 *   labelled SHA-256).
 * - A token is handed out until `refreshMarginMs` before it expires: 60 s or 10 % of its
 *   lifetime, whichever is smaller (3600 s → refreshed after 3540 s; 300 s → after 270 s).
 *   Expiry counts from when the token request was sent, so a slow answer errs early, not late.
 * - One refresh in flight per key: concurrent callers share the same promise. In workerd that
 *   promise may be awaited from another request's context; the runtime allows it, and a failed or
 *   cancelled refresh is simply dropped (the next caller starts a new one).
 * - Failures are not cached; `invalidate` drops a token the API refused (the 401 path).
 * - The token and the client secret are never logged, never part of an error, and never in a
 *   returned value: a `Credential` only yields the token inside `authorization()`, and its JSON form
 *   is "[credential]".
 * - At most MAX_ENTRIES keys; past that the oldest entry is evicted.
 */
import { TOKEN_PATH } from "../../../lib/client-refusal";
import { sha256Hex } from "../../../lib/crypto";
import type { Result } from "../../../lib/result";

/** Path of the token endpoint below the auth base URL (defined beside the rule that reads it, lib/client-refusal.ts). */
export { TOKEN_PATH };

/** Most keys kept in one cache (sources × scopes); the oldest is evicted past it. */
const MAX_ENTRIES = 1000;

/** A bearer token, sealed: the token is reachable only through `authorization()`. */
export interface Credential {
  /** When the auth server says it expires, epoch ms. */
  readonly expiresAt: number;
  /** From when the cache stops handing it out, epoch ms. */
  readonly refreshAt: number;
  /** The `Authorization` header value, `Bearer <token>`; only for building a request. */
  authorization(): string;
  /** `text` with every occurrence of the token replaced by "[redacted]". */
  redact(text: string): string;
  /** JSON form that never holds the token. */
  toJSON(): string;
}

/** What a token is requested with. */
export interface TokenRequestParts {
  authUrl: string;
  clientId: string;
  /** Secret material: only in the token request body, and as a fingerprint in the cache key. */
  clientSecret: string;
  /** Space-separated scopes, e.g. "CentrePoint" or "DataRetrieval". */
  scope: string;
}

/** What identifies a cached token: how it was requested, and the API it is sent to. */
export interface TokenKeyParts extends TokenRequestParts {
  apiUrl: string;
}

/** A fingerprint of a client secret for cache keys: 16 hex digits (64 bits) of a labelled SHA-256; never the secret. */
export function secretFingerprint(secret: string): string {
  return sha256Hex(`centrepoint-edge-relay/token-cache/v1\n${secret}`).slice(0, 16);
}

/** The cache key of a token: base URLs without trailing slashes, client id, secret fingerprint, scopes sorted. */
export function tokenKey(parts: TokenKeyParts): string {
  const scope = parts.scope.split(/\s+/).filter(Boolean).sort().join(" ");
  const base = (url: string) => url.replace(/\/+$/, "");
  return JSON.stringify([base(parts.authUrl), base(parts.apiUrl), parts.clientId, secretFingerprint(parts.clientSecret), scope]);
}

/** How long before expiry a token is refreshed, ms: min(60 s, 10 % of its lifetime). */
export function refreshMarginMs(lifetimeMs: number): number {
  return Math.min(60_000, Math.max(0, lifetimeMs) * 0.1);
}

/** Seals an access token issued at `issuedAt` (epoch ms) for `expiresInS` seconds. */
export function createCredential(accessToken: string, issuedAt: number, expiresInS: number): Credential {
  const lifetimeMs = expiresInS * 1000;
  const expiresAt = issuedAt + lifetimeMs;
  const refreshAt = expiresAt - refreshMarginMs(lifetimeMs);
  return Object.freeze({
    expiresAt,
    refreshAt,
    authorization: () => `Bearer ${accessToken}`,
    redact: (text: string) => (accessToken.length >= 4 ? text.split(accessToken).join("[redacted]") : text),
    toJSON: () => "[credential]",
  });
}

/** The token request: URL and form body. The body holds the client secret; send it, never log it. */
export function buildTokenRequest(parts: TokenRequestParts): { url: string; body: string; contentType: string } {
  const form = new URLSearchParams({ client_id: parts.clientId, client_secret: parts.clientSecret, grant_type: "client_credentials", scope: parts.scope });
  return { url: `${parts.authUrl.replace(/\/+$/, "")}${TOKEN_PATH}`, body: form.toString(), contentType: "application/x-www-form-urlencoded" };
}

/** An isolate-memory token cache. */
export interface TokenCache {
  /**
   * A fresh credential for `key` at `now` (epoch ms): the cached one until its `refreshAt`, else
   * the result of `issue()`. Concurrent callers of one key share one `issue()`.
   */
  acquire<E>(key: string, now: number, issue: () => Promise<Result<Credential, E>>): Promise<Result<Credential, E>>;
  /** Drops the cached credential of `key`; with `stale`, only if that is still the cached one. */
  invalidate(key: string, stale?: Credential): void;
  /** Drops every credential and forgets refreshes in flight (tests). */
  clear(): void;
  /** Number of cached credentials. */
  size(): number;
}

/** Creates an empty token cache. */
export function createTokenCache(): TokenCache {
  const cached = new Map<string, Credential>();
  const inFlight = new Map<string, Promise<Result<Credential, unknown>>>();
  return {
    acquire<E>(key: string, now: number, issue: () => Promise<Result<Credential, E>>): Promise<Result<Credential, E>> {
      const hit = cached.get(key);
      if (hit && now < hit.refreshAt) return Promise.resolve({ ok: true, value: hit });
      const pending = inFlight.get(key);
      if (pending) return pending as Promise<Result<Credential, E>>;
      const started = issue().then(
        (result) => {
          if (inFlight.get(key) !== started) return result; // cleared meanwhile: do not repopulate
          inFlight.delete(key);
          if (result.ok) {
            cached.delete(key);
            cached.set(key, result.value);
            if (cached.size > MAX_ENTRIES) cached.delete(cached.keys().next().value!);
          }
          return result;
        },
        (e: unknown) => {
          if (inFlight.get(key) === started) inFlight.delete(key);
          throw e;
        },
      );
      inFlight.set(key, started);
      return started;
    },
    invalidate(key, stale) {
      if (stale === undefined || cached.get(key) === stale) cached.delete(key);
    },
    clear() {
      cached.clear();
      inFlight.clear();
    },
    size: () => cached.size,
  };
}

/** The cache every client of this isolate shares unless it is given its own. */
export const isolateTokenCache: TokenCache = createTokenCache();

/** Empties the isolate's shared cache (tests). */
export function clearTokenCache(): void {
  isolateTokenCache.clear();
}
