import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearOperatorsCache } from "../../src/admin/identity/operators";
import { admin } from "../support/helpers";
import { entriesSince, trailMark } from "../support/trail";
import { type FakeAccess, installFakeAccess, viaAccess } from "./access-fake";

let access: FakeAccess;
beforeEach(async () => {
  access = await installFakeAccess();
  await env.CONFIG.delete("operators");
  clearOperatorsCache();
});
afterEach(() => vi.restoreAllMocks());

const put = (doc: unknown) => admin("/operators", { method: "PUT", body: JSON.stringify(doc) });

describe("the operators (roles) document", () => {
  it("is empty until written, then read back as saved, with the before and after recorded", async () => {
    expect(await (await admin("/operators")).json()).toEqual({ roles: {} });
    const doc = { roles: { "alice@site.org": "admin", "service:ci-bot": "viewer" } };
    const mark = await trailMark();
    const res = await put(doc);
    expect(res.status).toBe(200);
    expect(await (await admin("/operators")).json()).toEqual(doc);
    expect(JSON.parse((await env.CONFIG.get("operators"))!)).toEqual(doc);
    expect(await entriesSince(mark)).toEqual([
      expect.objectContaining({
        action: "operators.put",
        actor: "admin-token",
        role: "admin",
        via: "api",
        object: { document: "operators" },
        reason: null,
        before: { roles: {} },
        after: doc,
      }),
    ]);
  });

  it("refuses invalid documents with field-level 400s and changes nothing", async () => {
    await put({ roles: { "alice@site.org": "admin" } });
    const bad = await put({ roles: { "Bob@Site.org": "admin", "carol@site.org": "owner", "not an identity": "viewer" }, extra: 1 });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: string; fields: { path: string; message: string }[] };
    expect(body.error).toBe("invalid_document");
    const byPath = Object.fromEntries(body.fields.map((f) => [f.path, f.message]));
    expect(byPath["roles.Bob@Site.org"]).toContain("lower case");
    expect(byPath["roles.carol@site.org"]).toContain("viewer, operator, admin");
    expect(byPath["roles.not an identity"]).toContain("email address or service:");
    expect(byPath["(document)"]).toContain("extra");
    expect(JSON.parse((await env.CONFIG.get("operators"))!)).toEqual({ roles: { "alice@site.org": "admin" } });
  });

  it("gives a person signed in through Access their role at once, and takes it away", async () => {
    const jwt = await access.mint({ email: "dora@site.org" });
    expect((await viaAccess("/sources", jwt)).status).toBe(403);
    await put({ roles: { "dora@site.org": "viewer" } });
    expect((await viaAccess("/sources", jwt)).status).toBe(200);
    expect((await viaAccess("/operators", jwt)).status).toBe(403); // admin only
    await put({ roles: {} });
    expect((await viaAccess("/sources", jwt)).status).toBe(403);
  });

  it("is admin only", async () => {
    await put({ roles: { "olga@site.org": "operator" } });
    const jwt = await access.mint({ email: "olga@site.org" });
    const res = await viaAccess("/operators", jwt, { method: "PUT", body: JSON.stringify({ roles: { "olga@site.org": "admin" } }) });
    expect(res.status).toBe(403);
    expect(JSON.parse((await env.CONFIG.get("operators"))!)).toEqual({ roles: { "olga@site.org": "operator" } });
  });
});
