import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearOperatorsCache } from "../../src/admin/identity/operators";
import { freshId, putTarget } from "../support/helpers";
import { entriesSince, trailMark } from "../support/trail";
import { csrfOf, ORIGIN } from "../support/session";
import { type FakeAccess, installFakeAccess } from "./access-fake";

let access: FakeAccess;
beforeEach(async () => {
  access = await installFakeAccess();
  await env.CONFIG.put("operators", JSON.stringify({ roles: { "alice@site.org": "admin", "vic@site.org": "viewer" } }));
  clearOperatorsCache();
});
afterEach(() => vi.restoreAllMocks());

/** A browser behind Access: the CF_Authorization cookie (and the relay's own cookies, when given). */
const page = (path: string, cookie: string) => exports.default.fetch(`${ORIGIN}${path}`, { headers: { cookie }, redirect: "manual" });
const cookiesOf = (res: Response) => res.headers.getSetCookie().map((c) => c.split(";")[0]!);

describe("dashboard behind Cloudflare Access", () => {
  it("signs the person in from the Access cookie, shows who they are and their role, and records the sign-in once", async () => {
    const cookie = `CF_Authorization=${await access.mint({ email: "alice@site.org" })}`;
    const mark = await trailMark();
    const first = await page("/admin/", cookie);
    expect(first.status).toBe(200);
    const html = await first.text();
    expect(html).toContain("Signed in as <strong>alice@site.org</strong> · admin");
    const signIn = expect.objectContaining({
      action: "session.sign-in",
      actor: "alice@site.org",
      role: "admin",
      via: "dashboard",
      object: { method: "access" },
      reason: null,
    });
    expect(await entriesSince(mark, { action: "session.*" })).toEqual([signIn]);
    const again = await page("/admin/ui/deliveries", [cookie, ...cookiesOf(first)].join("; "));
    expect(again.status).toBe(200);
    expect(await entriesSince(mark, { action: "session.*" })).toEqual([signIn]);
  });

  it("says on the sign-in page that Access signs people in, the form being the break-glass", async () => {
    const html = await (await page("/admin/login", "")).text();
    expect(html).toContain("behind Cloudflare Access");
  });

  it("shows a viewer as a viewer", async () => {
    const res = await page("/admin/", `CF_Authorization=${await access.mint({ email: "vic@site.org" })}`);
    expect(await res.text()).toContain("Signed in as <strong>vic@site.org</strong> · viewer");
  });

  it("answers 403 to a verified person without a role, and records it", async () => {
    const mark = await trailMark();
    const res = await page("/admin/", `CF_Authorization=${await access.mint({ email: "nobody@site.org" })}`);
    expect(res.status).toBe(403);
    expect(await entriesSince(mark, { action: "session.*" })).toEqual([
      expect.objectContaining({
        action: "session.sign-in-refused",
        actor: "nobody@site.org",
        role: "none",
        via: "dashboard",
        object: null,
        reason: "no role in the operators document",
      }),
    ]);
  });

  it("binds its forms to the Access sign-in (CSRF) and signs out through Access", async () => {
    const target = freshId("t");
    await putTarget(target, { url: "https://edc.example/hooks", auth: { type: "bearer", tokenEnv: "TEST_TARGET_TOKEN" } });
    const cookie = `CF_Authorization=${await access.mint({ email: "alice@site.org" })}`;
    const mark = await trailMark();
    const csrf = csrfOf(await (await page(`/admin/ui/targets/${target}`, cookie)).text());
    const post = (path: string, fields: Record<string, string>, jar = cookie) =>
      exports.default.fetch(`${ORIGIN}${path}`, {
        method: "POST",
        headers: { cookie: jar, origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(fields),
        redirect: "manual",
      });
    expect((await post(`/admin/ui/targets/${target}/disable`, {})).status).toBe(403);
    // Another Access sign-in (a new iat) has another CSRF token.
    const later = `CF_Authorization=${await access.mint({ email: "alice@site.org" }, { claims: { iat: Math.floor(Date.now() / 1000) + 5 } })}`;
    expect((await post(`/admin/ui/targets/${target}/disable`, { _csrf: csrf }, later)).status).toBe(403);
    expect((await post(`/admin/ui/targets/${target}/disable`, { _csrf: csrf })).status).toBe(303);
    expect(JSON.parse((await env.CONFIG.get(`target:${target}`))!)).toHaveProperty("enabled", false);
    const out = await post("/admin/logout", { _csrf: csrf });
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe("/cdn-cgi/access/logout");
    expect(await entriesSince(mark, { action: "session.sign-out" })).toEqual([
      expect.objectContaining({
        action: "session.sign-out",
        actor: "alice@site.org",
        role: "admin",
        via: "dashboard",
        object: { method: "access" },
        reason: null,
      }),
    ]);
    // The refused posts (no CSRF token, another sign-in's) changed nothing; the accepted one is attributed to her.
    expect(await entriesSince(mark, { object: `target:${target}` })).toEqual([
      expect.objectContaining({
        action: "target.put",
        actor: "alice@site.org",
        role: "admin",
        via: "dashboard",
        object: { target },
        after: expect.objectContaining({ enabled: false }),
      }),
    ]);
  });
});
