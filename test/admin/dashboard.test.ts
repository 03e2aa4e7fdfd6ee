import { env, runDurableObjectAlarm } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { safeNext } from "../../src/admin/dashboard/routes/sign-in";
import { app } from "../../src/app";
import { clearConfigCache } from "../../src/config/store";
import { ADMIN_TOKEN, freshId, ledgerOf, postWebhook, putSource, putTarget, TEST_HMAC_SECRET, uploadBody } from "../support/helpers";
import { clockForEachTest } from "../support/clock";
import { fakeTarget, fireAlarm, outboxOf, SIGNING_SECRET } from "../support/outbox";
import { csrfOf, get, ORIGIN, postForm, signIn } from "../support/session";

/** The operator dashboard (src/admin/dashboard), end to end through the Worker. */

const COOKIE = "__Secure-relay_admin";
/** The values of the test secrets that documents name; none may ever appear in a page. */
const SECRET_VALUES = [ADMIN_TOKEN, TEST_HMAC_SECRET, "test-target-token", SIGNING_SECRET];

const { advance } = clockForEachTest({ quiet: [] });
beforeEach(() => clearConfigCache());

/** A source and a target (bearer auth + signing, both by secret name) and one delivery, handed to the target's outbox. */
async function seedDelivery() {
  const source = freshId("src");
  const target = freshId("edc");
  await putSource(source);
  await putTarget(target, {
    url: "https://edc.example/hooks",
    auth: { type: "bearer", tokenEnv: "TEST_TARGET_TOKEN" },
    signing: { secretEnv: "TEST_SIGNING_SECRET" },
  });
  const deliveryId = crypto.randomUUID();
  const body = uploadBody({ uploadId: "77001" });
  expect((await postWebhook(source, { deliveryId, body })).status).toBe(200);
  await runDurableObjectAlarm(ledgerOf(source)); // hand-off to the outbox
  return { source, target, deliveryId, body };
}

describe("sign-in", () => {
  it("shows the sign-in form", async () => {
    const res = await get("/admin/login");
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('name="token"');
    expect(html).toContain('type="password"');
  });

  it("sets a session cookie that is HttpOnly, Secure, SameSite=Strict, scoped to /admin, and not the token", async () => {
    const res = await postForm("/admin/login", { token: ADMIN_TOKEN, next: "/admin/ui/deliveries?kind=upload.*" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/ui/deliveries?kind=upload.*");
    const setCookie = res.headers.get("set-cookie") ?? "";
    expect(setCookie.startsWith(`${COOKIE}=`)).toBe(true);
    const attributes = setCookie.split(";").map((a) => a.trim().toLowerCase());
    expect(attributes).toEqual(expect.arrayContaining(["httponly", "secure", "samesite=strict", "path=/admin"]));
    expect(attributes.some((a) => a.startsWith("max-age="))).toBe(true);
    expect(setCookie).not.toContain(ADMIN_TOKEN);
    expect(decodeURIComponent(setCookie)).not.toContain(ADMIN_TOKEN);
  });

  it("refuses a wrong token with 401 and no cookie", async () => {
    const res = await postForm("/admin/login", { token: `${ADMIN_TOKEN}x` });
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(await res.text()).toContain("not the admin token");
  });

  it("refuses a sign-in posted from another site", async () => {
    const res = await postForm("/admin/login", { token: ADMIN_TOKEN }, { origin: "https://evil.example", site: "cross-site" });
    expect(res.status).toBe(403);
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("answers 503 everywhere under /admin when ADMIN_TOKEN is unset", async () => {
    const off = { ...env, ADMIN_TOKEN: undefined };
    for (const path of ["/admin", "/admin/", "/admin/login", "/admin/ui/deliveries"]) {
      expect((await app.request(path, {}, off)).status, path).toBe(503);
    }
    const post = await app.request(
      "/admin/login",
      { method: "POST", headers: { origin: "http://localhost", "content-type": "application/x-www-form-urlencoded" }, body: "token=" },
      off,
    );
    expect(post.status).toBe(503);
  });

  it("signs out: the cookie is cleared", async () => {
    const cookie = await signIn();
    const csrf = csrfOf(await (await get("/admin/", cookie)).text());
    const res = await postForm("/admin/logout", { _csrf: csrf }, { cookie });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/login?done=signed-out");
    expect(res.headers.get("set-cookie")).toMatch(new RegExp(`^${COOKIE}=;.*Max-Age=0`, "i"));
  });

  it("only sends people back to pages under /admin after sign-in", () => {
    expect(safeNext("/admin/ui/targets/edc?state=dead")).toBe("/admin/ui/targets/edc?state=dead");
    for (const evil of ["https://evil.example/admin/", "//evil.example/admin/", "/\\evil.example", "/admin/../webhooks/x", "/other", "/admin/login"]) {
      expect(safeNext(evil), evil).toBe("/admin/");
    }
  });
});

describe("access", () => {
  it("redirects signed-out page requests to the sign-in page, keeping where they were going", async () => {
    for (const path of ["/admin", "/admin/", "/admin/ui/deliveries?source=a", "/admin/ui/targets/x", "/admin/ui/sources/x"]) {
      const res = await get(path);
      expect(res.status, path).toBe(302);
      expect(res.headers.get("location"), path).toBe(`/admin/login?next=${encodeURIComponent(path)}`);
    }
  });

  it("keeps answering 401 JSON on the API without credentials", async () => {
    const res = await get("/admin/sources");
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: "unauthorized" });
  });

  it("lets a session read the JSON API but never write through it", async () => {
    const cookie = await signIn();
    expect((await get("/admin/sources", cookie)).status).toBe(200);
    const put = await exports.default.fetch(`${ORIGIN}/admin/sources/${freshId()}`, {
      method: "PUT",
      headers: { cookie, origin: ORIGIN, "content-type": "application/json" },
      body: JSON.stringify({ auth: { type: "none" } }),
    });
    expect(put.status).toBe(401);
  });

  it("accepts the bearer token on pages too", async () => {
    const res = await exports.default.fetch(`${ORIGIN}/admin/`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
  });

  it("refuses a tampered cookie and one signed before the token was rotated", async () => {
    const cookie = await signIn();
    const [name, value] = cookie.split("=") as [string, string];
    const tampered = `${name}=${value.replace(/^./, (ch) => (ch === "A" ? "B" : "A"))}`;
    expect((await get("/admin/", tampered)).status).toBe(302);
    const rotated = await app.request("/admin/", { headers: { cookie } }, { ...env, ADMIN_TOKEN: "a-new-admin-token" });
    expect(rotated.status).toBe(302);
    expect((await get("/admin/", cookie)).status).toBe(200);
  });

  it("refuses a session that has expired", async () => {
    const cookie = await signIn();
    advance(8 * 3_600_000 + 1);
    expect((await get("/admin/", cookie)).status).toBe(302);
  });
});

describe("CSRF", () => {
  it("refuses a POST without the session's CSRF token", async () => {
    const { target } = await seedDelivery();
    const cookie = await signIn();
    const res = await postForm(`/admin/ui/targets/${target}/disable`, {}, { cookie });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("Refused");
    expect(JSON.parse((await env.CONFIG.get(`target:${target}`))!)).not.toHaveProperty("enabled", false);
  });

  it("refuses a POST with another session's token", async () => {
    const { target } = await seedDelivery();
    const mine = await signIn();
    const theirs = csrfOf(await (await get("/admin/", await signIn())).text());
    expect((await postForm(`/admin/ui/targets/${target}/disable`, { _csrf: theirs }, { cookie: mine })).status).toBe(403);
  });

  it("refuses a POST from another origin even with the right token", async () => {
    const { target } = await seedDelivery();
    const cookie = await signIn();
    const csrf = csrfOf(await (await get(`/admin/ui/targets/${target}`, cookie)).text());
    const res = await postForm(`/admin/ui/targets/${target}/disable`, { _csrf: csrf }, { cookie, origin: "https://evil.example", site: "cross-site" });
    expect(res.status).toBe(403);
  });

  it("sends a signed-out POST to the sign-in page and changes nothing", async () => {
    const { target } = await seedDelivery();
    const res = await postForm(`/admin/ui/targets/${target}/disable`, {});
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toMatch(/^\/admin\/login\?next=/);
  });
});

describe("pages", () => {
  it("lists a seeded delivery and opens it from a search by delivery id", async () => {
    const { source, deliveryId } = await seedDelivery();
    const cookie = await signIn();
    const list = await (await get(`/admin/ui/deliveries?source=${source}`, cookie)).text();
    expect(list).toContain(deliveryId);
    expect(list).toContain("upload.completed");
    const search = await get(`/admin/ui/deliveries?q=${deliveryId}`, cookie);
    expect(search.status).toBe(302);
    expect(search.headers.get("location")).toBe(`/admin/ui/deliveries/${source}/${deliveryId}`);
  });

  it("filters by subject when the search is a subject", async () => {
    const { source, deliveryId } = await seedDelivery();
    const cookie = await signIn();
    const hit = await (await get(`/admin/ui/deliveries?source=${source}&q=${encodeURIComponent("studies/189/subjects/44732")}`, cookie)).text();
    expect(hit).toContain(deliveryId);
    const miss = await (await get(`/admin/ui/deliveries?source=${source}&q=${encodeURIComponent("studies/189/subjects/1")}`, cookie)).text();
    expect(miss).not.toContain(deliveryId);
  });

  it("finds a delivery by its upload id", async () => {
    const { source, deliveryId } = await seedDelivery();
    const cookie = await signIn();
    expect(await (await get(`/admin/ui/deliveries?source=${source}&q=77001`, cookie)).text()).toContain(deliveryId);
    expect(await (await get(`/admin/ui/deliveries?source=${source}&q=77002`, cookie)).text()).not.toContain(deliveryId);
  });

  it("shows a delivery's body, envelope and every attempt per target, and replays it", async () => {
    const { source, target, deliveryId } = await seedDelivery();
    const edc = fakeTarget(() => new Response("ok"));
    await fireAlarm(outboxOf(target));
    const cookie = await signIn();
    const path = `/admin/ui/deliveries/${source}/${deliveryId}`;
    const html = await (await get(path, cookie)).text();
    expect(html).toContain("&quot;uploadId&quot;:&quot;77001&quot;"); // raw body, escaped
    expect(html).toContain("com.actigraph.centrepoint.upload.completed"); // envelope
    expect(html).toContain(`Replay to ${target}`);
    expect(html).toMatch(/<span class="badge ok">delivered<\/span>/);
    expect(html).toMatch(/<span class="badge ok">success<\/span>/);

    const replay = await postForm(`${path}/replay`, { _csrf: csrfOf(html), target }, { cookie });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toBe(`${path}?done=replay&replayed=1&left=0`);
    await fireAlarm(outboxOf(target));
    expect(edc.sent).toHaveLength(2);
    expect(edc.sent[1]!.headers["webhook-id"]).toBe(edc.sent[0]!.headers["webhook-id"]);
    const after = await (await get(replay.headers.get("location")!, cookie)).text();
    expect(after).toContain("Replay scheduled for 1 target");
    expect(after.match(/<span class="badge ok">success<\/span>/g)).toHaveLength(2);
  });

  it("shows a target's dead letters and resumes, disables and enables it", async () => {
    const { source, target, deliveryId } = await seedDelivery();
    await putTarget(target, { url: "https://edc.example/hooks", retry: { maxAttempts: 1 } });
    fakeTarget(() => new Response("down", { status: 500 }));
    await fireAlarm(outboxOf(target));
    const cookie = await signIn();
    const page = await (await get(`/admin/ui/targets/${target}`, cookie)).text();
    expect(page).toContain(deliveryId);
    expect(page).toMatch(/<span class="badge bad">dead<\/span>/);
    expect(page).toContain("Replay 1 dead delivery");
    const csrf = csrfOf(page);

    const disabled = await postForm(`/admin/ui/targets/${target}/disable`, { _csrf: csrf }, { cookie });
    expect(disabled.status).toBe(303);
    expect(JSON.parse((await env.CONFIG.get(`target:${target}`))!)).toMatchObject({ enabled: false });
    const enabled = await postForm(`/admin/ui/targets/${target}/enable`, { _csrf: csrf }, { cookie });
    expect(enabled.headers.get("location")).toBe(`/admin/ui/targets/${target}?done=enabled`);
    expect(JSON.parse((await env.CONFIG.get(`target:${target}`))!)).toMatchObject({ enabled: true });

    const replayed = await postForm(`/admin/ui/targets/${target}/replay-dead`, { _csrf: csrf, reason: "receiver fixed" }, { cookie });
    expect(replayed.headers.get("location")).toBe(`/admin/ui/targets/${target}?done=replayed&n=1&more=0`);
    expect((await outboxOf(target).getDispatch(source, deliveryId))?.dispatch.state).toBe("pending");
  });

  it("shows why a target holds its deliveries and resumes it once fixed", async () => {
    const { source, target, deliveryId } = await seedDelivery();
    await putTarget(target, { url: "https://edc.example/hooks", auth: { type: "bearer", tokenEnv: "NO_SUCH_SECRET" } });
    const edc = fakeTarget(() => new Response("ok"));
    await fireAlarm(outboxOf(target));
    const cookie = await signIn();
    const overview = await (await get("/admin/", cookie)).text();
    expect(overview).toContain(`Target ${target}: holding 1 delivery: secret NO_SUCH_SECRET (outbound bearer auth) is not set.`);
    const page = await (await get(`/admin/ui/targets/${target}`, cookie)).text();
    expect(page).toMatch(/<span class="badge warn">held<\/span>/);
    await putTarget(target, { url: "https://edc.example/hooks" });
    const resumed = await postForm(`/admin/ui/targets/${target}/resume`, { _csrf: csrfOf(page) }, { cookie });
    expect(resumed.headers.get("location")).toBe(`/admin/ui/targets/${target}?done=resumed&n=1`);
    await fireAlarm(outboxOf(target));
    expect(edc.sent).toHaveLength(1);
    expect((await outboxOf(target).getDispatch(source, deliveryId))?.dispatch.state).toBe("delivered");
  });

  it("shows the overview with sources, targets and what needs attention", async () => {
    const { source, target } = await seedDelivery();
    const cookie = await signIn();
    // The overview shows the stored report and never runs a check itself.
    expect(await (await get("/admin/", cookie)).text()).toContain("not checked yet");
    expect((await ledgerOf(source).integrity()).report).toBeNull();
    await ledgerOf(source).checkIntegrity();
    const html = await (await get("/admin/", cookie)).text();
    expect(html).toContain(`/admin/ui/sources/${source}`);
    expect(html).toContain(`/admin/ui/targets/${target}`);
    expect(html).toContain("intact");
  });

  it("starts a full re-verification of a source's chain on request and shows its report", async () => {
    const { source } = await seedDelivery();
    const cookie = await signIn();
    const before = await (await get(`/admin/ui/sources/${source}`, cookie)).text();
    expect(before).toContain("Re-verify the whole chain");
    expect(before).toContain("No check has finished yet.");
    const started = await postForm(`/admin/ui/sources/${source}/verify`, { _csrf: csrfOf(before) }, { cookie });
    expect(started.headers.get("location")).toBe(`/admin/ui/sources/${source}?done=verify`);
    const after = await (await get(started.headers.get("location")!, cookie)).text();
    expect(after).toContain("Intact: 1 record checked (full re-verification");
  });

  it("answers 404 pages for unknown deliveries, targets and sources", async () => {
    const cookie = await signIn();
    for (const path of ["/admin/ui/deliveries/nope/nope", "/admin/ui/targets/nope", "/admin/ui/sources/nope"]) {
      expect((await get(path, cookie)).status, path).toBe(404);
    }
  });

  it("never renders a secret: only the names of the secrets documents refer to", async () => {
    const { source, target, deliveryId } = await seedDelivery();
    const cookie = await signIn();
    const pages = [
      "/admin/",
      "/admin/ui/deliveries",
      `/admin/ui/deliveries/${source}/${deliveryId}`,
      `/admin/ui/targets/${target}`,
      `/admin/ui/sources/${source}?done=verify`,
    ];
    const html = (await Promise.all(pages.map(async (p) => (await get(p, cookie)).text()))).join("\n");
    for (const secret of SECRET_VALUES) expect(html).not.toContain(secret);
    expect(html).toContain("TEST_HMAC_SECRET");
    expect(html).toContain("TEST_TARGET_TOKEN");
    expect(html).toContain("TEST_SIGNING_SECRET");
  });

  it("sends pages with a strict Content-Security-Policy and no scripts", async () => {
    const cookie = await signIn();
    const res = await get("/admin/", cookie);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const html = await res.text();
    expect(html).not.toContain("<script");
    const nonce = /style-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(html).toContain(`<style nonce="${nonce}">`);
  });
});
