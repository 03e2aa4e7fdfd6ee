import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearOperatorsCache } from "../../src/admin/identity/operators";
import { KEYS_REFETCH_MS } from "../../src/admin/identity/access";
import { app } from "../../src/app";
import { ADMIN_TOKEN, admin } from "../support/helpers";
import { entriesSince, trailMark } from "../support/trail";
import { b64url, type FakeAccess, installFakeAccess, newKey, viaAccess } from "./access-fake";

let access: FakeAccess;

async function setRoles(roles: Record<string, string>): Promise<void> {
  await env.CONFIG.put("operators", JSON.stringify({ roles }));
  clearOperatorsCache();
}

/** Each test from its own address group, so refusals counted by the sign-in guard never add up across tests. */
let ip = 0;
const fromNewAddress = () => ({ "cf-connecting-ip": `203.0.113.${++ip}` });

beforeEach(async () => {
  access = await installFakeAccess();
  await setRoles({ "alice@site.org": "admin", "vic@site.org": "viewer", "service:ci-bot": "operator" });
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A call with an Access JWT; answers the status and the parsed body. */
async function call(jwt: string, path = "/tokens", init: RequestInit = {}) {
  const res = await viaAccess(path, jwt, { ...init, headers: { ...fromNewAddress(), ...(init.headers as Record<string, string>) } });
  return { status: res.status, body: (await res.json()) as { error?: string; message?: string; check?: string; items?: unknown[] } };
}

describe("Cloudflare Access JWT", () => {
  it("signs in the person named by a valid JWT's email claim, lower-cased, with their role", async () => {
    const jwt = await access.mint({ email: "Alice@Site.org" });
    const res = await call(jwt);
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([]);
    // A viewer is a verified caller too, stopped only by the route's role.
    const viewer = await call(await access.mint({ email: "vic@site.org" }));
    expect(viewer).toMatchObject({ status: 403, body: { error: "forbidden", message: "vic@site.org has the role viewer; this needs admin." } });
  });

  it("names an Access service token service:<common_name>", async () => {
    const res = await call(await access.mint({ commonName: "ci-bot" }));
    expect(res).toMatchObject({ status: 403, body: { message: "service:ci-bot has the role operator; this needs admin." } });
  });

  it("refuses an expired JWT with 401 naming the check", async () => {
    const past = Math.floor(Date.now() / 1000) - 7200;
    const res = await call(await access.mint({ email: "alice@site.org" }, { claims: { iat: past, nbf: past, exp: past + 3600 } }));
    expect(res).toMatchObject({ status: 401, body: { error: "unauthorized", check: "exp" } });
    expect(res.body.message).toContain("expired");
  });

  it("counts refused JWTs by the failed check in /admin/metrics", async () => {
    const line = 'relay_admin_signin_refusals_total{reason="access_exp"} ';
    const count = async () =>
      Number(
        (await (await admin("/metrics")).text())
          .split("\n")
          .find((l) => l.startsWith(line))
          ?.slice(line.length) ?? "0",
      );
    const before = await count();
    const past = Math.floor(Date.now() / 1000) - 7200;
    expect((await call(await access.mint({ email: "alice@site.org" }, { claims: { iat: past, nbf: past, exp: past + 3600 } }))).status).toBe(401);
    expect(await count()).toBe(before + 1);
  });

  it("refuses a JWT not valid yet (nbf)", async () => {
    const later = Math.floor(Date.now() / 1000) + 600;
    const res = await call(await access.mint({ email: "alice@site.org" }, { claims: { nbf: later } }));
    expect(res).toMatchObject({ status: 401, body: { check: "nbf" } });
  });

  it("refuses a JWT for another application (aud)", async () => {
    const res = await call(await access.mint({ email: "alice@site.org" }, { claims: { aud: ["another-app"] } }));
    expect(res).toMatchObject({ status: 401, body: { check: "aud" } });
  });

  it("refuses a JWT from another team (iss)", async () => {
    const res = await call(await access.mint({ email: "alice@site.org" }, { claims: { iss: "https://evil.cloudflareaccess.com" } }));
    expect(res).toMatchObject({ status: 401, body: { check: "iss" } });
  });

  it("refuses a JWT signed by a key the team does not publish (unknown kid), fetching the certs again at most once a minute", async () => {
    const stranger = await newKey("not-ours");
    expect((await call(await access.mint({ email: "alice@site.org" }))).status).toBe(200);
    expect(access.certFetches()).toBe(1);
    for (let i = 0; i < 3; i++) {
      const res = await call(await access.mint({ email: "alice@site.org" }, { key: stranger }));
      expect(res).toMatchObject({ status: 401, body: { check: "kid" } });
    }
    expect(access.certFetches()).toBe(1); // within the minute: no refetch per unknown kid
  });

  it("follows a key rotation: a new kid fetches the certs again once the minute has passed", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.now();
    const old = access.published[0]!;
    expect((await call(await access.mint({ email: "alice@site.org" }))).status).toBe(200);
    const rotated = await newKey("rotated");
    access.published = [rotated, old];
    vi.setSystemTime(t0 + KEYS_REFETCH_MS + 1);
    expect((await call(await access.mint({ email: "alice@site.org" }, { key: rotated }))).status).toBe(200);
    expect(access.certFetches()).toBe(2);
    // The old key is still published and cached: no further fetch.
    expect((await call(await access.mint({ email: "alice@site.org" }, { key: old }))).status).toBe(200);
    expect(access.certFetches()).toBe(2);
  });

  it('refuses alg "none" and HS256', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = b64url(JSON.stringify({ iss: "http://127.0.0.1:9", aud: ["test-access-aud"], email: "alice@site.org", iat: now, exp: now + 600 }));
    const none = `${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${claims}.`;
    expect(await call(none)).toMatchObject({ status: 401, body: { check: "alg" } });
    const header = b64url(JSON.stringify({ alg: "HS256", kid: access.published[0]!.kid, typ: "JWT" }));
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("guess"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${header}.${claims}`)));
    const hs = `${header}.${claims}.${b64url(String.fromCharCode(...mac))}`;
    expect(await call(hs)).toMatchObject({ status: 401, body: { check: "alg" } });
  });

  it("refuses a tampered payload (signature)", async () => {
    const jwt = await access.mint({ email: "vic@site.org" });
    const [h, p, s] = jwt.split(".") as [string, string, string];
    const claims = JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    const forged = `${h}.${b64url(JSON.stringify({ ...claims, email: "alice@site.org" }))}.${s}`;
    const res = await call(forged);
    expect(res).toMatchObject({ status: 401, body: { check: "signature" } });
    expect(res.body.message).not.toContain(s);
  });

  it("never falls through to another method: a refused JWT with the right ADMIN_TOKEN is still 401", async () => {
    const expired = await access.mint({ email: "alice@site.org" }, { claims: { exp: Math.floor(Date.now() / 1000) - 10 } });
    const res = await call(expired, "/sources", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res).toMatchObject({ status: 401, body: { check: "exp" } });
  });

  it("reads the CF_Authorization cookie when the header is absent", async () => {
    const jwt = await access.mint({ email: "alice@site.org" });
    const res = await app.request("/admin/tokens", { headers: { cookie: `CF_Authorization=${jwt}`, ...fromNewAddress() } }, env);
    expect(res.status).toBe(200);
  });

  it("answers 403 naming a verified person without a role, and records the refused sign-in", async () => {
    const mark = await trailMark();
    const res = await call(await access.mint({ email: "mallory@site.org" }), "/sources");
    expect(res).toMatchObject({ status: 403, body: { error: "forbidden" } });
    expect(res.body.message).toContain("mallory@site.org");
    expect(await entriesSince(mark, { action: "session.*" })).toEqual([
      expect.objectContaining({
        action: "session.sign-in-refused",
        actor: "mallory@site.org",
        role: "none",
        via: "api",
        object: null,
        reason: "no role in the operators document",
      }),
    ]);
  });

  it("ignores Access JWTs while Access is off (both vars empty), and answers 503 when it is half configured", async () => {
    const jwt = await access.mint({ email: "alice@site.org", commonName: undefined });
    const off = { ...env, ACCESS_TEAM_DOMAIN: "", ACCESS_AUD: "" };
    const ignored = await app.request("/admin/sources", { headers: { "cf-access-jwt-assertion": jwt, ...fromNewAddress() } }, off);
    expect(ignored.status).toBe(401);
    expect(((await ignored.json()) as { check?: string }).check).toBeUndefined();
    const half = await app.request("/admin/sources", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, { ...env, ACCESS_AUD: "" });
    expect(half.status).toBe(503);
    const plainHttp = { ...env, ACCESS_TEAM_DOMAIN: "http://acme.cloudflareaccess.com" };
    expect((await app.request("/admin/sources", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, plainHttp)).status).toBe(503);
  });

  it("refuses a change through the API from another site even with a valid Access JWT", async () => {
    const jwt = await access.mint({ email: "alice@site.org" });
    const res = await call(jwt, "/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "x1", role: "viewer" }),
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(res).toMatchObject({ status: 403, body: { error: "forbidden" } });
  });
});
