/**
 * A local stand-in for Cloudflare Access, for Node scripts (demo, browser and e2e tests): serves
 * its team's signing keys at `/cdn-cgi/access/certs` over node:http on 127.0.0.1 and mints RS256
 * JWTs for any email or service token, as Access signs them (docs/identity.md). Start the relay
 * with ACCESS_TEAM_DOMAIN = `url`, ACCESS_AUD = `audience` and ALLOW_HTTP_TARGETS = "true"; send a
 * minted JWT in the `Cf-Access-Jwt-Assertion` header or the `CF_Authorization` cookie.
 *
 * Contracts: listens on 127.0.0.1 only; keeps no timers; `rotate()` publishes a new key first
 * (the old one stays published until `retire()`), as Access rotates.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

/** Who a minted JWT names: a person (email) or an Access service token (common_name). */
export type AccessSubject = { email: string } | { serviceToken: string };

/** A running stand-in. */
export interface FakeAccessServer {
  /** The team domain, e.g. http://127.0.0.1:40123 (ACCESS_TEAM_DOMAIN). */
  url: string;
  /** The application's audience tag (ACCESS_AUD). */
  audience: string;
  /** Mints a JWT for `who`, valid `ttlSeconds` (default 3600); `claims` override the defaults (tests of refusals). */
  mint(who: AccessSubject, opts?: { ttlSeconds?: number; claims?: Record<string, unknown> }): Promise<string>;
  /** Publishes a new signing key and signs with it from now on. */
  rotate(): Promise<void>;
  /** Stops publishing every key but the current one. */
  retire(): void;
  /** How many times the certs were fetched. */
  certFetches(): number;
  close(): Promise<void>;
}

interface Key {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
  jwk: JWK;
}

async function newKey(): Promise<Key> {
  const kid = randomUUID();
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

/** Starts the stand-in on 127.0.0.1 (port 0 = a free one). */
export async function startFakeAccess(opts: { port?: number; audience?: string } = {}): Promise<FakeAccessServer> {
  const audience = opts.audience ?? `demo-aud-${randomUUID().slice(0, 8)}`;
  let keys: Key[] = [await newKey()];
  let fetches = 0;
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/cdn-cgi/access/certs") {
      fetches++;
      const body = JSON.stringify({ keys: keys.map((k) => k.jwk), public_cert: { kid: keys[0]!.kid, cert: "" }, public_certs: [] });
      res.writeHead(200, { "content-type": "application/json" }).end(body);
      return;
    }
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not_found" }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    audience,
    async mint(who, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      const identity = "email" in who ? { email: who.email, sub: randomUUID(), type: "app" } : { common_name: who.serviceToken, sub: "", type: "app" };
      const claims = { iss: url, aud: [audience], iat: now, nbf: now, exp: now + (o.ttlSeconds ?? 3600), ...identity, ...o.claims };
      const key = keys[0]!;
      return new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" }).sign(key.privateKey);
    },
    async rotate() {
      keys = [await newKey(), ...keys];
    },
    retire() {
      keys = keys.slice(0, 1);
    },
    certFetches: () => fetches,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
