import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { trailOf } from "../../src/audit/audit";
import type { AuditLine } from "../../src/audit/format";
import { sha256Hex } from "../../src/lib/crypto";
import { clockForEachTest } from "../support/clock";
import { admin, freshId } from "../support/helpers";
import { csrfOf, get, ORIGIN, postForm, signIn } from "../support/session";

/** The People page (`/admin/ui/people`): the roles document and the named API tokens, for admins (docs/identity.md). */

clockForEachTest();

let ip = 0;
/** A bearer request from its own address (refusals are counted per address group). */
const withToken = (token: string, path: string, init: RequestInit = {}) =>
  exports.default.fetch(`${ORIGIN}${path}`, {
    ...init,
    redirect: "manual",
    headers: { authorization: `Bearer ${token}`, "cf-connecting-ip": `198.51.100.${++ip}`, ...(init.headers as Record<string, string>) },
  });

const putRoles = async (roles: Record<string, string>) => {
  const res = await admin("/operators", { method: "PUT", body: JSON.stringify({ roles }) });
  expect(res.status).toBe(200);
};
const roles = async () => ((await (await admin("/operators")).json()) as { roles: Record<string, string> }).roles;

async function createToken(name: string, role: string): Promise<{ id: string; token: string }> {
  const res = await admin("/tokens", { method: "POST", body: JSON.stringify({ name, role }) });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; token: string };
}

/** The newest entries of the trail with this action, newest first. */
const entries = async (action: string, limit = 5): Promise<AuditLine[]> => (await trailOf(env).list({ action, limit })).items;

/** Signs in and opens the People page: the session cookie and the page's CSRF token. */
async function openPage(): Promise<{ cookie: string; csrf: string; html: string }> {
  const cookie = await signIn();
  const res = await get("/admin/ui/people", cookie);
  expect(res.status).toBe(200);
  const html = await res.text();
  return { cookie, csrf: csrfOf(html), html };
}

/** The table row whose header cell is `key`. */
const rowOf = (html: string, key: string) => {
  const start = html.indexOf(`<th scope="row">${key}</th>`);
  expect(start, `a row for ${key}`).toBeGreaterThan(-1);
  return html.slice(start, html.indexOf("</tr>", start));
};

describe("dashboard: People", () => {
  it("lists the roles document and the tokens not revoked, never a token or its hash, and links it in an admin's nav", async () => {
    const person = `${freshId("p")}@site.org`;
    await putRoles({ ...(await roles()), [person]: "operator", "service:ci-bot": "viewer" });
    const kept = await createToken(freshId("keep"), "viewer");
    const gone = await createToken(freshId("gone"), "operator");
    expect((await admin(`/tokens/${gone.id}`, { method: "DELETE", headers: { "x-audit-reason": "test" } })).status).toBe(204);

    const { html } = await openPage();
    expect(html).toContain('href="/admin/ui/people" aria-current="page"');
    expect(rowOf(html, person)).toContain("operator");
    expect(rowOf(html, "service:ci-bot")).toContain("viewer");
    const listed = ((await (await admin("/tokens")).json()) as { items: { id: string; name: string }[] }).items;
    const keptName = listed.find((t) => t.id === kept.id)!.name;
    expect(rowOf(html, keptName)).toContain("viewer");
    expect(rowOf(html, keptName)).toContain("admin-token");
    expect(html).not.toContain(gone.id);
    for (const t of [kept, gone]) {
      expect(html).not.toContain(t.token);
      expect(html).not.toContain(sha256Hex(t.token));
    }
  });

  it("sets a role through the form with the same operators.put entry as the API: the document before and after", async () => {
    const person = `${freshId("p")}@site.org`;
    const before = await roles();
    const { cookie, csrf } = await openPage();
    const res = await postForm("/admin/ui/people/roles", { _csrf: csrf, identity: person, role: "operator" }, { cookie });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/ui/people?done=role-set");
    const after = await roles();
    expect(after).toEqual({ ...before, [person]: "operator" });
    const [entry] = await entries("operators.put", 1);
    expect(entry).toMatchObject({
      actor: "admin-token",
      role: "admin",
      via: "dashboard",
      action: "operators.put",
      object: JSON.stringify({ document: "operators" }),
    });
    expect(JSON.parse(entry!.before!)).toEqual({ roles: before });
    expect(JSON.parse(entry!.after!)).toEqual({ roles: after });
    // The API writes the same entry for the same change.
    await putRoles({ ...after, [person]: "viewer" });
    const [api] = await entries("operators.put", 1);
    expect(api).toMatchObject({ action: entry!.action, object: entry!.object, before: entry!.after, via: "api" });
    expect(JSON.parse(api!.after!)).toEqual({ roles: { ...after, [person]: "viewer" } });
    const page = await (await get("/admin/ui/people?done=role-set", cookie)).text();
    expect(page).toContain("Role saved.");
  });

  it("refuses a bad identity or role with the field's message and changes nothing", async () => {
    const before = await roles();
    const { cookie, csrf } = await openPage();
    const written = (await entries("operators.put", 1))[0]?.seq;
    const upper = await postForm("/admin/ui/people/roles", { _csrf: csrf, identity: "Alice@Site.org", role: "admin" }, { cookie });
    expect(upper.status).toBe(400);
    expect(await upper.text()).toContain("Alice@Site.org: write the email address in lower case");
    const nonsense = await postForm("/admin/ui/people/roles", { _csrf: csrf, identity: "not an identity", role: "admin" }, { cookie });
    expect(nonsense.status).toBe(400);
    expect(await nonsense.text()).toContain("must be a person&#39;s email address or service:&lt;common_name&gt; of an Access service token");
    const role = await postForm("/admin/ui/people/roles", { _csrf: csrf, identity: "bob@site.org", role: "owner" }, { cookie });
    expect(role.status).toBe(400);
    expect(await role.text()).toContain("must be one of viewer, operator, admin");
    expect(await roles()).toEqual(before);
    expect((await entries("operators.put", 1))[0]?.seq).toBe(written);
  });

  it("removes an identity only with a reason, recorded with the document before and after", async () => {
    const person = `${freshId("p")}@site.org`;
    await putRoles({ ...(await roles()), [person]: "viewer" });
    const before = await roles();
    const { cookie, csrf } = await openPage();
    const written = (await entries("operators.put", 1))[0]!.seq;
    const noReason = await postForm("/admin/ui/people/roles/remove", { _csrf: csrf, identity: person, reason: "  " }, { cookie });
    expect(noReason.status).toBe(400);
    expect(await noReason.text()).toContain("Removing a person&#39;s role needs a reason");
    expect(await roles()).toEqual(before);
    expect((await entries("operators.put", 1))[0]!.seq).toBe(written);

    const res = await postForm("/admin/ui/people/roles/remove", { _csrf: csrf, identity: person, reason: "left the study" }, { cookie });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/ui/people?done=role-removed");
    const { [person]: _removed, ...rest } = before;
    expect(await roles()).toEqual(rest);
    const [entry] = await entries("operators.put", 1);
    expect(entry).toMatchObject({ action: "operators.put", reason: "left the study", via: "dashboard" });
    expect(JSON.parse(entry!.before!)).toEqual({ roles: before });
    expect(JSON.parse(entry!.after!)).toEqual({ roles: rest });

    const missing = await postForm("/admin/ui/people/roles/remove", { _csrf: csrf, identity: person, reason: "again" }, { cookie });
    expect(missing.status).toBe(404);
    expect((await entries("operators.put", 1))[0]!.seq).toBe(entry!.seq);
  });

  it("shows a new token once, on the answer only (no-store), which then works as a bearer token and is never shown or recorded again", async () => {
    const name = freshId("ci");
    const { cookie, csrf } = await openPage();
    const res = await postForm("/admin/ui/people/tokens", { _csrf: csrf, name, role: "viewer", expiresInDays: "30" }, { cookie });
    expect(res.status).toBe(201);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("location")).toBeNull();
    expect(res.headers.get("set-cookie")).toBeNull();
    const answer = await res.text();
    const token = /<code id="new-token">(cpr_[A-Za-z0-9_-]+)<\/code>/.exec(answer)?.[1];
    expect(token).toBeDefined();

    expect((await withToken(token!, "/admin/sources")).status).toBe(200);
    const listed = ((await (await admin("/tokens")).json()) as { items: { id: string; name: string; role: string }[] }).items.find((t) => t.name === name);
    expect(listed).toMatchObject({ role: "viewer" });

    const later = await (await get("/admin/ui/people", cookie)).text();
    expect(rowOf(later, name)).toContain("viewer");
    expect(later).not.toContain(token);
    expect(later).not.toContain(sha256Hex(token!));
    const [entry] = await entries("token.create", 1);
    expect(entry).toMatchObject({ action: "token.create", via: "dashboard", object: JSON.stringify({ token: listed!.id, name }) });
    const trail = JSON.stringify((await trailOf(env).list({ limit: 200 })).items);
    expect(trail).not.toContain(token);
    expect(trail).not.toContain(sha256Hex(token!));
  });

  it("refuses an invalid token request and a reused name with the reason, creating nothing", async () => {
    const taken = freshId("taken");
    await createToken(taken, "viewer");
    const { cookie, csrf } = await openPage();
    const written = (await entries("token.create", 1))[0]!.seq;
    const bad = await postForm("/admin/ui/people/tokens", { _csrf: csrf, name: "Bad Name", role: "viewer", expiresInDays: "400" }, { cookie });
    expect(bad.status).toBe(400);
    const html = await bad.text();
    expect(html).toContain("name: must be 1-64 characters");
    expect(html).toContain("expiresInDays:");
    expect(html).not.toContain('id="new-token"');
    expect((await entries("token.create", 1))[0]!.seq).toBe(written);
    const again = await postForm("/admin/ui/people/tokens", { _csrf: csrf, name: taken, role: "admin", expiresInDays: "" }, { cookie });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain(`A token named &quot;${taken}&quot; exists or existed`);
    // The API's path: a name already used is refused before anything is recorded.
    expect((await entries("token.create", 1))[0]!.seq).toBe(written);
  });

  it("revokes a token only with a reason; then it stops working at once", async () => {
    const name = freshId("rv");
    const t = await createToken(name, "operator");
    const { cookie, csrf } = await openPage();
    const noReason = await postForm(`/admin/ui/people/tokens/${t.id}/revoke`, { _csrf: csrf, reason: "" }, { cookie });
    expect(noReason.status).toBe(400);
    expect(await noReason.text()).toContain("Revoking a token needs a reason");
    expect((await withToken(t.token, "/admin/sources")).status).toBe(200);

    const res = await postForm(`/admin/ui/people/tokens/${t.id}/revoke`, { _csrf: csrf, reason: "runner retired" }, { cookie });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/ui/people?done=token-revoked");
    expect((await withToken(t.token, "/admin/sources")).status).toBe(401);
    const [entry] = await entries("token.revoke", 1);
    expect(entry).toMatchObject({ action: "token.revoke", reason: "runner retired", via: "dashboard", object: JSON.stringify({ token: t.id, name }) });
    expect(await (await get("/admin/ui/people", cookie)).text()).not.toContain(t.id);
  });

  it("refuses viewers and operators with the dashboard's refusal page, and shows them no People link", async () => {
    for (const role of ["viewer", "operator"] as const) {
      const t = await createToken(freshId(role), role);
      const res = await withToken(t.token, "/admin/ui/people");
      expect(res.status).toBe(403);
      const html = await res.text();
      expect(html).toContain("Your role does not allow this.");
      expect(html).toContain(`has the role ${role}; this needs admin.`);
      const post = await withToken(t.token, "/admin/ui/people/roles", {
        method: "POST",
        headers: { origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ identity: "eve@site.org", role: "admin" }),
      });
      expect(post.status).toBe(403);
      expect(await post.text()).toContain("Your role does not allow this.");
      expect(await (await withToken(t.token, "/admin/")).text()).not.toContain("/admin/ui/people");
    }
    expect(await roles()).not.toHaveProperty("eve@site.org");
  });

  it("refuses a form without the session's CSRF token and changes nothing", async () => {
    const { cookie } = await openPage();
    const res = await postForm("/admin/ui/people/roles", { identity: "mallory@site.org", role: "admin" }, { cookie });
    expect(res.status).toBe(403);
    expect(await roles()).not.toHaveProperty("mallory@site.org");
    const t = await createToken(freshId("csrf"), "viewer");
    const revoke = await postForm(`/admin/ui/people/tokens/${t.id}/revoke`, { reason: "x" }, { cookie });
    expect(revoke.status).toBe(403);
    expect((await withToken(t.token, "/admin/sources")).status).toBe(200);
  });
});
