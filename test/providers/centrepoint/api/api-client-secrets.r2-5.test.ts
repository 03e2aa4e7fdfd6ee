import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { saveDocument } from "../../../../src/admin/service/documents";
import { clearConfigCache, parseConfig } from "../../../../src/config/store";
import type { Bindings } from "../../../../src/env";
import { getWebhookRegistration } from "../../../../src/providers/centrepoint/api/endpoints";
import { createCentrePointApi } from "../../../../src/providers/centrepoint/api/client";
import { createTokenCache, tokenKey } from "../../../../src/providers/centrepoint/api/token";
import { resolveCredentials } from "../../../../src/providers/centrepoint/api/settings";
import { createFakeCentrePoint } from "../../../../harness/fake-centrepoint";
import { admin, freshId, postWebhook, putSource, putTarget } from "../../../support/helpers";
import { centrepointBlock, useFakeCentrePoint, useTestHooks } from "../../../support/reconcile";

/**
 * Issue 16, item 5: the CentrePoint API client's secrets are a role of their own (named only by
 * `centrepoint` blocks: never a source's webhook secret, never a target's), its URLs go only to
 * CentrePoint's own hosts (or hosts listed in CENTREPOINT_API_HOSTS, or loopback with
 * ALLOW_HTTP_TARGETS), and a cached token is only reused for the same token URL, API URL, client
 * id and client secret.
 */

useTestHooks(["log", "warn", "error"]);

type Refused = { error: string; fields: { path: string; message: string }[] };
const HMAC = { type: "hmac", secretEnv: "TEST_HMAC_SECRET" };

async function putDoc(kind: "sources" | "targets", id: string, doc: unknown): Promise<{ status: number; body: Refused }> {
  const res = await admin(`/${kind}/${id}`, { method: "PUT", body: JSON.stringify(doc) });
  return { status: res.status, body: (await res.json()) as Refused };
}

describe("API-client secrets are named only by centrepoint blocks", () => {
  it("refuses a block whose clientSecretEnv is another source's webhook secret, naming that source", async () => {
    const victim = freshId();
    await putSource(victim, { auth: { type: "hmac", secretEnv: "CP_VICTIM_HMAC" } });
    const r = await putDoc("sources", freshId(), { auth: HMAC, centrepoint: centrepointBlock({ clientSecretEnv: "CP_VICTIM_HMAC" }) });
    expect(r.status).toBe(400);
    expect(r.body.fields).toEqual([{ path: "centrepoint.clientSecretEnv", message: expect.stringContaining(`source:${victim} (auth.secretEnv)`) }]);
  });

  it("refuses a block whose clientIdEnv is another source's previous webhook password", async () => {
    const victim = freshId();
    await putSource(victim, { auth: { type: "basic", username: "cp", passwordEnv: "CP_V_PW", previousPasswordEnv: "CP_V_PW_OLD" } });
    const r = await putDoc("sources", freshId(), { auth: HMAC, centrepoint: centrepointBlock({ clientIdEnv: "CP_V_PW_OLD" }) });
    expect(r.status).toBe(400);
    expect(r.body.fields).toEqual([{ path: "centrepoint.clientIdEnv", message: expect.stringContaining(`source:${victim} (auth.previousPasswordEnv)`) }]);
  });

  it("refuses a block that names the same document's own webhook secret", async () => {
    const r = await putDoc("sources", freshId(), {
      auth: { type: "hmac", secretEnv: "CP_OWN_HMAC" },
      centrepoint: centrepointBlock({ clientSecretEnv: "CP_OWN_HMAC" }),
    });
    expect(r.status).toBe(400);
    expect(r.body.fields.map((f) => f.path)).toContain("centrepoint.clientSecretEnv");
  });

  it("refuses a block that names a target's secret, naming the target", async () => {
    const target = freshId("t");
    await putTarget(target, { url: "https://edc.example/hooks", signing: { secretEnv: "CP_T_SIGNING" } });
    const r = await putDoc("sources", freshId(), { auth: HMAC, centrepoint: centrepointBlock({ clientSecretEnv: "CP_T_SIGNING" }) });
    expect(r.status).toBe(400);
    expect(r.body.fields).toEqual([{ path: "centrepoint.clientSecretEnv", message: expect.stringContaining(`target:${target}`) }]);
  });

  it("refuses, in the other direction, a source whose webhook secret is another source's API-client secret", async () => {
    const owner = freshId();
    await putSource(owner, { centrepoint: centrepointBlock({ clientSecretEnv: "CP_OWNER_API_SECRET" }) });
    const r = await putDoc("sources", freshId(), { auth: { type: "bearer", tokenEnv: "CP_OWNER_API_SECRET" } });
    expect(r.status).toBe(400);
    expect(r.body.fields).toEqual([{ path: "auth.tokenEnv", message: expect.stringContaining(`source:${owner} (centrepoint.clientSecretEnv)`) }]);
  });

  it("still lets two sources share one API client", async () => {
    await putSource(freshId(), { centrepoint: centrepointBlock() });
    expect((await putDoc("sources", freshId(), { auth: HMAC, centrepoint: centrepointBlock({ studyId: 190 }) })).status).toBe(201);
  });

  it("on read: both documents written to KV with the overlap are invalid, and the one naming the webhook secret answers 503", async () => {
    const victim = freshId();
    const thief = freshId();
    await putSource(victim, { auth: { type: "hmac", secretEnv: "CP_KV_HMAC" } });
    await putSource(thief, { allowedIps: ["*"], centrepoint: centrepointBlock({ clientSecretEnv: "CP_KV_HMAC" }) });
    const listed = (await (await admin(`/sources/${thief}`)).json()) as { valid: boolean; errors: { path: string; message: string }[] };
    expect(listed.valid).toBe(false);
    expect(listed.errors).toContainEqual({ path: "centrepoint.clientSecretEnv", message: expect.stringContaining(`source:${victim}`) });
    const all = (await (await admin("/sources")).json()) as { items: { id: string; valid: boolean }[] };
    expect(all.items.filter((s) => s.id === victim || s.id === thief).map((s) => s.valid)).toEqual([false, false]);
    expect((await postWebhook(thief)).status).toBe(503);
    const run = await admin(`/sources/${thief}/reconcile`, { method: "POST" });
    expect(run.status).toBe(400);
  });
});

describe("the API's hosts", () => {
  const base = { studyId: 189, webhookId: 74, clientIdEnv: "CP_HOST_ID", clientSecretEnv: "CP_HOST_SECRET" };

  it("refuses hosts other than CentrePoint's own, per field", async () => {
    const foreign = await putDoc("sources", freshId(), { auth: HMAC, centrepoint: { ...base, apiUrl: "https://collector.example.org" } });
    expect(foreign.status).toBe(400);
    expect(foreign.body.fields).toEqual([{ path: "centrepoint.apiUrl", message: expect.stringContaining("CENTREPOINT_API_HOSTS") }]);
    const swapped = await putDoc("sources", freshId(), { auth: HMAC, centrepoint: { ...base, authUrl: "https://api.actigraphcorp.com" } });
    expect(swapped.body.fields.map((f) => f.path)).toEqual(["centrepoint.authUrl"]);
    expect((await putDoc("sources", freshId(), { auth: HMAC, centrepoint: base })).status).toBe(201);
  });

  it("allows a host listed in CENTREPOINT_API_HOSTS, on save and before use", async () => {
    const doc = { auth: HMAC, centrepoint: { ...base, apiUrl: "https://api.eu.example.org", authUrl: "https://Auth.EU.example.org/" } };
    const listed = { ...(env as unknown as Bindings), CENTREPOINT_API_HOSTS: " api.eu.example.org, AUTH.eu.example.org ," };
    const refused = await saveDocument(env as unknown as Bindings, "source", freshId(), doc, "api", async () => undefined);
    expect(refused).toMatchObject({ ok: false });
    const saved = await saveDocument(listed, "source", freshId(), doc, "api", async () => undefined);
    expect(saved).toMatchObject({ ok: true });
    const parsed = parseConfig("source", doc);
    if (!parsed.ok || !parsed.value.centrepoint) throw new Error("fixture");
    const block = parsed.value.centrepoint;
    const creds = { CP_HOST_ID: "id", CP_HOST_SECRET: "secret" };
    expect(resolveCredentials({ ...listed, ...creds }, block)).toMatchObject({ ok: true });
    expect(resolveCredentials({ ...(env as unknown as Bindings), ...creds }, block)).toMatchObject({
      ok: false,
      error: expect.stringContaining("centrepoint.apiUrl"),
    });
  });

  it("refuses a foreign host stored straight in KV before anything is fetched", async () => {
    const { spy } = useFakeCentrePoint();
    const id = freshId();
    await putSource(id, { centrepoint: centrepointBlock({ apiUrl: "https://collector.example.org", authUrl: "https://collector.example.org" }) });
    clearConfigCache();
    const res = await admin(`/sources/${id}/reconcile`, { method: "POST" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "source_misconfigured", message: expect.stringContaining("CENTREPOINT_API_HOSTS") });
    expect(spy).not.toHaveBeenCalled();
  });
});

describe("the token cache key", () => {
  const parts = { authUrl: "https://auth.actigraphcorp.com", apiUrl: "https://api.actigraphcorp.com", clientId: "c", clientSecret: "s1", scope: "CentrePoint" };

  it("covers the token URL, the API URL, the client id and the secret, and holds no secret", () => {
    const key = tokenKey(parts);
    for (const change of [
      { authUrl: "https://auth2.test" },
      { apiUrl: "https://api2.test" },
      { clientId: "d" },
      { clientSecret: "s2" },
      { scope: "DataRetrieval" },
    ]) {
      expect(tokenKey({ ...parts, ...change }), JSON.stringify(change)).not.toBe(key);
    }
    expect(tokenKey({ ...parts, apiUrl: "https://api.actigraphcorp.com/" })).toBe(key);
    expect(key).not.toContain("s1");
  });

  it("never hands one source's token to a source with the same client id but another API URL or secret", async () => {
    const fake = createFakeCentrePoint({ now: () => 0, clients: [{ clientId: "shared-id", clientSecret: "right-secret" }] });
    const seen: { url: string; authorization: string | null }[] = [];
    const tokens = createTokenCache();
    const client = (apiUrl: string, clientSecret: string) =>
      createCentrePointApi({
        apiUrl,
        authUrl: "https://auth.fake.test",
        clientId: "shared-id",
        clientSecret,
        fetch: async (input, init) => {
          seen.push({ url: String(input), authorization: new Headers(init?.headers).get("authorization") });
          return fake.fetch(input as string, init);
        },
        now: () => 0,
        sleep: async () => undefined,
        random: () => 0.5,
        tokens,
        limits: { maxRetries: 0 },
      });
    expect((await getWebhookRegistration(client("https://api.fake.test", "right-secret"), 189, 74)).ok).toBe(true);
    const owners = new Set(seen.map((s) => s.authorization).filter((a): a is string => a !== null));
    expect(owners.size).toBe(1);
    // Another API URL with a wrong secret: its own token request is refused, and the cached token goes nowhere.
    const other = await getWebhookRegistration(client("https://collector.fake.test", "wrong-secret"), 189, 74);
    expect(other).toMatchObject({ ok: false, error: { kind: "auth" } });
    expect(seen.filter((s) => s.url.startsWith("https://collector.fake.test")).map((s) => s.authorization)).toEqual([]);
    // Another API URL with the right secret gets a token of its own.
    expect((await getWebhookRegistration(client("https://api2.fake.test", "right-secret"), 189, 74)).ok).toBe(true);
    expect(fake.tokenRequests()).toBe(3);
  });
});
