import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { clearConfigCache, parseConfig } from "../../../../src/config/store";
import { resolveCredentials } from "../../../../src/providers/centrepoint/api/settings";
import { admin, freshId, postWebhook, putSource, putTarget } from "../../../support/helpers";
import { centrepointBlock, CP_CLIENT, useFakeCentrePoint, useTestHooks } from "../../../support/reconcile";

/** The `centrepoint` block of a source document: one zod schema on write and on read, the outbound URL policy, the secret rules. */

useTestHooks(["log", "error"]);

type Refused = { error: string; fields: { path: string; message: string }[] };
const AUTH = { type: "hmac", secretEnv: "TEST_HMAC_SECRET" };

async function putDoc(id: string, block: Record<string, unknown>): Promise<{ status: number; body: Refused & { config?: Record<string, unknown> } }> {
  const res = await admin(`/sources/${id}`, { method: "PUT", body: JSON.stringify({ auth: AUTH, centrepoint: block }) });
  return { status: res.status, body: (await res.json()) as Refused & { config?: Record<string, unknown> } };
}

describe("on write", () => {
  it("fills in the documented defaults", async () => {
    const { status, body } = await putDoc(freshId(), { studyId: 189, webhookId: 74, clientIdEnv: "CP_ID", clientSecretEnv: "CP_SECRET" });
    expect(status).toBe(201);
    expect(body.config?.centrepoint).toEqual({
      studyId: 189,
      webhookId: 74,
      clientIdEnv: "CP_ID",
      clientSecretEnv: "CP_SECRET",
      apiUrl: "https://api.actigraphcorp.com",
      authUrl: "https://auth.actigraphcorp.com",
      reconcile: { everyMinutes: 60, lookbackHours: 168 },
    });
  });

  it("refuses bad fields with field-level errors", async () => {
    const { status, body } = await putDoc(freshId(), {
      studyId: "189",
      webhookId: -1,
      clientIdEnv: "cp id",
      apiUrl: "https://api.example.org/?tenant=a",
      reconcile: { everyMinutes: 3, lookbackHours: 0 },
      extra: true,
    });
    expect(status).toBe(400);
    expect(body.fields.map((f) => f.path).sort()).toEqual(
      [
        "centrepoint",
        "centrepoint.apiUrl",
        "centrepoint.clientIdEnv",
        "centrepoint.clientSecretEnv",
        "centrepoint.reconcile.everyMinutes",
        "centrepoint.reconcile.lookbackHours",
        "centrepoint.studyId",
        "centrepoint.webhookId",
      ].sort(),
    );
    expect(body.fields.find((f) => f.path === "centrepoint.reconcile.everyMinutes")?.message).toContain("0 (off) or at least 5");
  });

  it("holds the API's base URLs to the outbound URL policy: https, loopback http only with ALLOW_HTTP_TARGETS, never an internal address", async () => {
    const base = { studyId: 189, webhookId: 74, clientIdEnv: "CP_ID", clientSecretEnv: "CP_SECRET" };
    const plain = await putDoc(freshId(), { ...base, apiUrl: "http://api.example.org" });
    expect(plain.status).toBe(400);
    expect(plain.body.fields).toEqual([{ path: "centrepoint.apiUrl", message: "http:// is allowed only to loopback hosts (127.0.0.0/8, ::1, localhost)" }]);
    const internal = await putDoc(freshId(), { ...base, authUrl: "https://10.1.2.3" });
    expect(internal.body.fields.map((f) => f.path)).toEqual(["centrepoint.authUrl"]);
    // ALLOW_HTTP_TARGETS is "true" in the tests: loopback http is allowed.
    expect((await putDoc(freshId(), { ...base, apiUrl: "http://127.0.0.1:9", authUrl: "http://localhost:9" })).status).toBe(201);
  });

  it("applies the secret rules to clientIdEnv and clientSecretEnv: reserved names, and never a target's secret", async () => {
    const base = { studyId: 189, webhookId: 74, clientIdEnv: "CP_ID", clientSecretEnv: "CP_SECRET" };
    const reserved = await putDoc(freshId(), { ...base, clientSecretEnv: "ADMIN_TOKEN" });
    expect(reserved.body.fields.map((f) => f.path)).toEqual(["centrepoint.clientSecretEnv"]);
    await putTarget(freshId("t"), { url: "https://edc.example/hooks", auth: { type: "bearer", tokenEnv: "SHARED_CP_SECRET" } });
    const shared = await putDoc(freshId(), { ...base, clientSecretEnv: "SHARED_CP_SECRET" });
    expect(shared.status).toBe(400);
    expect(shared.body.fields).toEqual([{ path: "centrepoint.clientSecretEnv", message: expect.stringContaining("names SHARED_CP_SECRET, which target:") }]);
  });
});

describe("on read", () => {
  it("reports a block written straight to KV that fails the schema, and ingress answers 503 for it", async () => {
    const id = freshId();
    await putSource(id, { centrepoint: { studyId: 189 } });
    const listed = (await (await admin(`/sources/${id}`)).json()) as { valid: boolean; errors: { path: string }[] };
    expect(listed.valid).toBe(false);
    expect(listed.errors.map((e) => e.path)).toEqual(["centrepoint.webhookId", "centrepoint.clientIdEnv", "centrepoint.clientSecretEnv"]);
    expect((await postWebhook(id)).status).toBe(503);
  });

  it("checks the URLs again before use: a stored http URL to another host is refused and nothing is fetched", async () => {
    const { spy } = useFakeCentrePoint();
    const id = freshId();
    await putSource(id, { centrepoint: centrepointBlock({ apiUrl: "http://api.example.org" }) });
    const res = await admin(`/sources/${id}/reconcile`, { method: "POST" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: "source_misconfigured",
      message: expect.stringContaining("centrepoint.apiUrl http:// is allowed only to loopback hosts"),
    });
    expect(spy).not.toHaveBeenCalled();
  });

  it("names a client secret that is not set, never a value", async () => {
    useFakeCentrePoint();
    const id = freshId();
    await putSource(id, { centrepoint: centrepointBlock({ clientSecretEnv: "CP_NOT_SET" }) });
    const res = await admin(`/sources/${id}/registration`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "source_misconfigured",
      message: "The registration cannot be checked: the Worker secret CP_NOT_SET is not set (wrangler secret put).",
    });
  });
});

describe("resolveCredentials", () => {
  it("reads both secrets of a valid block", () => {
    clearConfigCache();
    const parsed = parseConfig("source", { auth: AUTH, centrepoint: centrepointBlock() });
    if (!parsed.ok || !parsed.value.centrepoint) throw new Error("fixture");
    expect(resolveCredentials(env, parsed.value.centrepoint)).toEqual({
      ok: true,
      value: { apiUrl: "http://127.0.0.1:9", authUrl: "http://127.0.0.1:9", ...CP_CLIENT },
    });
    expect(resolveCredentials({ ...env, ALLOW_HTTP_TARGETS: "false" }, parsed.value.centrepoint)).toMatchObject({ ok: false });
  });
});
