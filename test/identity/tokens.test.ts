import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { sha256Hex } from "../../src/lib/crypto";
import { admin } from "../support/helpers";
import { entriesSince, trailMark } from "../support/trail";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

let ip = 0;
/** A bearer call from its own address (refusals are counted per address group). */
const withToken = (token: string, path: string, init: RequestInit = {}) =>
  exports.default.fetch(`http://relay.test/admin${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${token}`,
      "cf-connecting-ip": `192.0.2.${++ip}`,
      "content-type": "application/json",
      ...(init.headers as Record<string, string>),
    },
  });

interface Created {
  id: string;
  name: string;
  role: string;
  token: string;
  expiresAt: string;
}

async function create(body: Record<string, unknown>): Promise<Created> {
  const res = await admin("/tokens", { method: "POST", body: JSON.stringify(body) });
  expect(res.status).toBe(201);
  return (await res.json()) as Created;
}

const listed = async () => ((await (await admin("/tokens")).json()) as { items: Record<string, unknown>[] }).items;

describe("named API tokens", () => {
  it("creates a token shown once, stores only its SHA-256, and lists it without the token", async () => {
    const mark = await trailMark();
    const t = await create({ name: "ci-reader", role: "viewer", expiresInDays: 30 });
    expect(t).toMatchObject({ name: "ci-reader", role: "viewer" });
    expect(t.id).toMatch(/^tok_/);
    expect(t.token).toMatch(/^cpr_[A-Za-z0-9_-]{40,}$/);
    expect(Date.parse(t.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect(Date.parse(t.expiresAt) - Date.now()).toBeLessThanOrEqual(30 * 86_400_000);
    const row = (await listed()).find((r) => r.id === t.id);
    expect(row).toMatchObject({ name: "ci-reader", role: "viewer", createdBy: "admin-token", lastUsedAt: null, expired: false });
    const everything = JSON.stringify(await listed());
    expect(everything).not.toContain(t.token);
    expect(everything).not.toContain(sha256Hex(t.token));
    // The guard's table holds the digest, never the token.
    const stub = env.SIGN_IN_GUARD.get(env.SIGN_IN_GUARD.idFromName("dashboard-sign-in"));
    const { runInDurableObject } = await import("cloudflare:test");
    const stored = await runInDurableObject(stub, (_o, state) => state.storage.sql.exec("SELECT * FROM api_tokens").toArray());
    expect(JSON.stringify(stored)).not.toContain(t.token);
    expect(JSON.stringify(stored)).toContain(sha256Hex(t.token));
    expect(await entriesSince(mark, { action: "token.*" })).toEqual([
      expect.objectContaining({
        action: "token.create",
        actor: "admin-token",
        role: "admin",
        via: "api",
        object: { token: t.id, name: "ci-reader" },
        reason: null,
        before: null,
        after: { name: "ci-reader", role: "viewer", expiresAt: t.expiresAt },
      }),
    ]);
    expect(JSON.stringify(await entriesSince(mark))).not.toContain(t.token);
  });

  it("signs in as token:<name> with the token's role, and records when it was last used", async () => {
    const t = await create({ name: "ci-operator", role: "operator" });
    const read = await withToken(t.token, "/sources");
    expect(read.status).toBe(200);
    const refused = await withToken(t.token, "/tokens");
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: "forbidden", message: "token:ci-operator has the role operator; this needs admin." });
    const row = (await listed()).find((r) => r.id === t.id)!;
    expect(typeof row.lastUsedAt).toBe("string");
  });

  it("refuses a name used before, and invalid requests with field-level 400s", async () => {
    await create({ name: "once-only", role: "viewer" });
    const mark = await trailMark();
    const again = await admin("/tokens", { method: "POST", body: JSON.stringify({ name: "once-only", role: "admin" }) });
    expect(again.status).toBe(409);
    // Nothing was created, so nothing is recorded as created.
    expect(await entriesSince(mark, { action: "token.create" })).toEqual([]);
    const bad = await admin("/tokens", { method: "POST", body: JSON.stringify({ name: "Bad Name", role: "owner", expiresInDays: 0 }) });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: string; fields: { path: string }[] };
    expect(body.error).toBe("bad_request");
    expect(body.fields.map((f) => f.path).sort()).toEqual(["expiresInDays", "name", "role"]);
  });

  it("revokes at once, and only with a reason", async () => {
    const t = await create({ name: "to-revoke", role: "admin" });
    const mark = await trailMark();
    expect((await withToken(t.token, "/sources")).status).toBe(200);
    const noReason = await admin(`/tokens/${t.id}`, { method: "DELETE" });
    expect(noReason.status).toBe(400);
    expect(await noReason.json()).toMatchObject({ error: "reason_required" });
    expect((await withToken(t.token, "/sources")).status).toBe(200);
    const revoked = await admin(`/tokens/${t.id}`, { method: "DELETE", headers: { "x-audit-reason": "laptop lost" } });
    expect(revoked.status).toBe(204);
    expect((await withToken(t.token, "/sources")).status).toBe(401);
    expect((await listed()).some((r) => r.id === t.id)).toBe(false);
    expect((await admin(`/tokens/${t.id}`, { method: "DELETE", headers: { "x-audit-reason": "again" } })).status).toBe(404);
    // One entry: the refused revocations (no reason, already revoked) wrote none.
    expect(await entriesSince(mark, { action: "token.*" })).toEqual([
      expect.objectContaining({
        action: "token.revoke",
        actor: "admin-token",
        role: "admin",
        via: "api",
        reason: "laptop lost",
        object: { token: t.id, name: "to-revoke" },
        before: expect.objectContaining({ id: t.id, name: "to-revoke", role: "admin" }),
        after: null,
      }),
    ]);
  });

  it("stops working once expired, and says so", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t = await create({ name: "short-lived", role: "viewer", expiresInDays: 1 });
    expect((await withToken(t.token, "/sources")).status).toBe(200);
    vi.setSystemTime(Date.now() + 86_400_000 + 1);
    const expired = await withToken(t.token, "/sources");
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { message: string }).message).toContain("expired");
    expect((await listed()).find((r) => r.id === t.id)).toMatchObject({ expired: true });
  });

  it("is counted by the sign-in guard like any wrong token", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const t = await create({ name: "guarded", role: "viewer" });
    const from = { "cf-connecting-ip": "192.0.2.250" };
    const call = (token: string) => exports.default.fetch("http://relay.test/admin/sources", { headers: { authorization: `Bearer ${token}`, ...from } });
    for (let i = 0; i < 10; i++) expect((await call(`cpr_wrong-${i}`)).status).toBe(401);
    expect((await call(t.token)).status).toBe(429);
  });

  it("cannot sign in to the dashboard's admin-token form", async () => {
    const t = await create({ name: "not-for-forms", role: "admin" });
    const res = await exports.default.fetch("http://relay.test/admin/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://relay.test", "cf-connecting-ip": "192.0.2.251" },
      body: new URLSearchParams({ token: t.token, next: "/admin/" }),
      redirect: "manual",
    });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain("API tokens are for the API");
  });
});

describe("identity metrics", () => {
  const metric = (text: string, line: string) =>
    Number(
      text
        .split("\n")
        .find((l) => l.startsWith(line))
        ?.slice(line.length + 1) ?? "0",
    );

  it("counts refused sign-ins by reason and tokens near or past their expiry", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    vi.useFakeTimers({ toFake: ["Date"] });
    const before = await (await admin("/metrics")).text();
    await create({ name: "metrics-soon", role: "viewer", expiresInDays: 7 });
    expect((await withToken("cpr_not-a-token", "/sources")).status).toBe(401);
    const after = await (await admin("/metrics")).text();
    expect(metric(after, 'relay_admin_signin_refusals_total{reason="wrong_token"}')).toBe(
      metric(before, 'relay_admin_signin_refusals_total{reason="wrong_token"}') + 1,
    );
    expect(metric(after, 'relay_api_tokens{state="expiring_14d"}')).toBe(metric(before, 'relay_api_tokens{state="expiring_14d"}') + 1);
    vi.setSystemTime(Date.now() + 8 * 86_400_000);
    const later = await (await admin("/metrics")).text();
    expect(metric(later, 'relay_api_tokens{state="expired"}')).toBeGreaterThanOrEqual(1);
  });
});
