import { exports } from "cloudflare:workers";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { vi } from "vitest";
import { clearAccessKeys } from "../../src/admin/identity/access";

/**
 * A stand-in for Cloudflare Access inside the Worker's tests: RS256 key pairs, the team's certs
 * served through a fetch mock at the team domain of vitest.config.ts (nothing listens there), and
 * JWTs minted for any email or service token. Install it in beforeEach; vi.restoreAllMocks() in
 * afterEach removes the mock.
 */

export const TEAM_DOMAIN = "http://127.0.0.1:9";
export const AUDIENCE = "test-access-aud";
const CERTS_URL = `${TEAM_DOMAIN}/cdn-cgi/access/certs`;

export interface FakeKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

/** A fresh RS256 key pair with its public JWK. */
export async function newKey(kid = `k-${crypto.randomUUID().slice(0, 8)}`): Promise<FakeKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

/** The fake team: the keys it publishes (change `published` to rotate) and how often its certs were fetched. */
export interface FakeAccess {
  published: FakeKey[];
  certFetches: () => number;
  /** Mints a JWT with `key` (default: the first published key); `claims` override the defaults. */
  mint: (who: { email?: string; commonName?: string }, opts?: MintOptions) => Promise<string>;
}

export interface MintOptions {
  key?: FakeKey;
  /** Claims to set or override (iss, aud, exp, nbf, iat ...). */
  claims?: Record<string, unknown>;
  /** The `kid` header (default: the key's). */
  kid?: string;
}

/** Installs the fake: clears the relay's key cache and mocks fetch for the certs URL (other URLs go to the real fetch). */
export async function installFakeAccess(keys?: FakeKey[]): Promise<FakeAccess> {
  clearAccessKeys();
  const published = keys ?? [await newKey()];
  let fetches = 0;
  const real = globalThis.fetch;
  const fake: FakeAccess = {
    published,
    certFetches: () => fetches,
    mint: async (who, opts = {}) => {
      const key = opts.key ?? fake.published[0]!;
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = { iss: TEAM_DOMAIN, aud: [AUDIENCE], iat: now, nbf: now, exp: now + 3600, type: "app" };
      if (who.email) Object.assign(payload, { email: who.email, sub: `sub-${who.email}`, identity_nonce: "n" });
      if (who.commonName) Object.assign(payload, { common_name: who.commonName, sub: "" });
      return new SignJWT({ ...payload, ...opts.claims }).setProtectedHeader({ alg: "RS256", kid: opts.kid ?? key.kid, typ: "JWT" }).sign(key.privateKey);
    },
  };
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url === CERTS_URL) {
      fetches++;
      return Response.json({ keys: fake.published.map((k) => k.jwk), public_cert: { kid: fake.published[0]?.kid ?? "", cert: "" } });
    }
    return real(input, init);
  });
  return fake;
}

/** Calls the admin API with an Access JWT in the header Access adds (no bearer). */
export function viaAccess(path: string, jwt: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`http://relay.test/admin${path}`, {
    ...init,
    headers: { "cf-access-jwt-assertion": jwt, "content-type": "application/json", ...(init.headers as Record<string, string>) },
  });
}

/** Base64url of a string (for hand-made JWTs). */
export const b64url = (s: string) => btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
