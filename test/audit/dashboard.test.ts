import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { trailOf } from "../../src/audit/audit";
import { diffDocuments } from "../../src/admin/dashboard/pages/audit";
import { admin, freshId, putTarget } from "../support/helpers";
import { clockForEachTest } from "../support/clock";
import { csrfOf, get, postForm, signIn } from "../support/session";

clockForEachTest();

describe("the dashboard and the audit trail", () => {
  it("records sign-in, refused sign-in and sign-out of the admin-token form", async () => {
    const refused = await postForm("/admin/login", { token: "not-it", next: "/admin/" }, {});
    expect(refused.status).toBe(401);
    const cookie = await signIn();
    const page = await get("/admin/", cookie);
    const out = await postForm("/admin/logout", { _csrf: csrfOf(await page.text()) }, { cookie });
    expect(out.status).toBe(303);
    const actions = (await trailOf(env).list({ action: "session.*", limit: 3 })).items.map((e) => [e.action, e.actor, e.role, e.via]);
    expect(actions).toEqual([
      ["session.sign-out", "admin-token", "admin", "dashboard"],
      ["session.sign-in", "admin-token", "admin", "dashboard"],
      ["session.sign-in-refused", "unknown", "none", "dashboard"],
    ]);
  });

  it("needs a reason in the form to replay a target's dead deliveries: 400 page, nothing recorded", async () => {
    const target = freshId("t");
    await putTarget(target, { url: "https://edc.example.org/in" });
    const cookie = await signIn();
    const page = await (await get(`/admin/ui/targets/${target}`, cookie)).text();
    const res = await postForm(`/admin/ui/targets/${target}/replay-dead`, { _csrf: csrfOf(page) }, { cookie });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("A bulk replay needs a reason");
    expect((await trailOf(env).list({ object: `target:${target}`, limit: 5 })).items).toEqual([]);
  });

  it("shows the trail with filters and each change as a diff, the chain's state, and a target's own entries on its page", async () => {
    const target = freshId("t");
    await admin(`/targets/${target}`, { method: "PUT", body: JSON.stringify({ url: "https://edc.example.org/in" }) });
    await admin(`/targets/${target}`, { method: "PUT", body: JSON.stringify({ url: "https://edc.example.org/v2" }), headers: { "x-audit-reason": "moved" } });
    const cookie = await signIn();
    const res = await get(`/admin/ui/audit?object=${target}&action=target.put`, cookie);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("The chain");
    expect(html).toContain("verified");
    expect(html).toContain("moved");
    expect(html).toMatch(/url: <del>&quot;https:\/\/edc\.example\.org\/in&quot;<\/del> → <ins>&quot;https:\/\/edc\.example\.org\/v2&quot;<\/ins>/);
    const targetPage = await (await get(`/admin/ui/targets/${target}`, cookie)).text();
    expect(targetPage).toContain("Audit trail");
    expect(targetPage).toContain("target.put");
  });

  it("diffs documents field by field", () => {
    expect(diffDocuments({ a: 1, b: { c: "x" } }, { a: 1, b: { c: "y" }, d: [1] })).toEqual([
      { path: "b.c", before: '"x"', after: '"y"' },
      { path: "d.0", before: null, after: "1" },
    ]);
    expect(diffDocuments({ a: 1 }, null)).toEqual([{ path: "a", before: "1", after: null }]);
  });
});
