import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { admin, freshId, ledgerOf, postWebhook, putSource, putTarget, sign } from "../support/helpers";
import { clockForEachTest } from "../support/clock";
import { fakeTarget, fireAlarm, outboxOf } from "../support/outbox";
import { RESERVED_SECRET_NAMES } from "../../src/config/reserved-names";

/**
 * Review finding 4: any Worker secret could be sent to any URL (a target naming a source's HMAC
 * secret), and plain variables acted as keys (`secretEnv: "MAX_BODY_BYTES"`). Reserved names are
 * refused in every `*Env` field, and a secret name belongs to sources or to targets, never both.
 */

clockForEachTest({ quiet: [] });

type Fields = { error: string; fields: { path: string; message: string }[] };

async function put(kind: "sources" | "targets", id: string, doc: unknown): Promise<{ status: number; body: Fields }> {
  const res = await admin(`/${kind}/${id}`, { method: "PUT", body: JSON.stringify(doc) });
  return { status: res.status, body: (await res.json()) as Fields };
}

const TARGET_URL = "https://edc.example/hooks";

describe("reserved names", () => {
  const sourceFields = (name: string) =>
    [
      ["auth.secretEnv", { auth: { type: "hmac", secretEnv: name } }],
      ["auth.previousSecretEnv", { auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET", previousSecretEnv: name } }],
      ["auth.passwordEnv", { auth: { type: "basic", username: "cp", passwordEnv: name } }],
      ["auth.previousPasswordEnv", { auth: { type: "basic", username: "cp", passwordEnv: "TEST_BASIC_PASSWORD", previousPasswordEnv: name } }],
      ["auth.tokenEnv", { auth: { type: "bearer", tokenEnv: name } }],
      ["auth.previousTokenEnv", { auth: { type: "bearer", tokenEnv: "TEST_BEARER_TOKEN", previousTokenEnv: name } }],
    ] as const;
  const targetFields = (name: string) =>
    [
      ["auth.tokenEnv", { url: TARGET_URL, auth: { type: "bearer", tokenEnv: name } }],
      ["auth.passwordEnv", { url: TARGET_URL, auth: { type: "basic", username: "relay", passwordEnv: name } }],
      ["auth.valueEnv", { url: TARGET_URL, auth: { type: "header", name: "X-Api-Key", valueEnv: name } }],
      ["signing.secretEnv", { url: TARGET_URL, signing: { secretEnv: name } }],
    ] as const;

  for (const name of ["ADMIN_TOKEN", "MAX_BODY_BYTES", "ALLOW_HTTP_TARGETS"]) {
    it(`refuses ${name} in every *Env field of sources and targets, through the API`, async () => {
      for (const [path, doc] of sourceFields(name)) {
        const r = await put("sources", freshId(), doc);
        expect(r.status, path).toBe(400);
        expect(r.body.fields.map((f) => f.path)).toContain(path);
      }
      for (const [path, doc] of targetFields(name)) {
        const r = await put("targets", freshId("t"), doc);
        expect(r.status, path).toBe(400);
        expect(r.body.fields.map((f) => f.path)).toContain(path);
      }
    });
  }

  it("reserves every plain variable and secret the relay itself reads", () => {
    // Every string binding of the test Worker is a [vars] entry of wrangler.toml or a test-only secret.
    const vars = Object.entries(env as unknown as Record<string, unknown>)
      .filter(([name, value]) => typeof value === "string" && !name.startsWith("TEST_") && !name.startsWith("__"))
      .map(([name]) => name);
    expect(vars.length).toBeGreaterThan(1);
    for (const name of vars) expect(RESERVED_SECRET_NAMES).toContain(name);
    expect(RESERVED_SECRET_NAMES).toContain("ADMIN_TOKEN");
  });

  it("answers 503 for a source written to KV that uses a plain variable as its key, even with a signature made with that value", async () => {
    const source = freshId();
    await putSource(source, { auth: { type: "hmac", secretEnv: "MAX_BODY_BYTES" } });
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const body = '{"status":"started","uploadId":"1","subjectId":"2","studyId":"3"}';
    const res = await postWebhook(source, { body, sign: false, headers: { "x-actigraph-signature": await sign(body, "262144") } });
    expect(res.status).toBe(503);
    expect(await ledgerOf(source).list({ limit: 10 })).toHaveLength(0);
  });
});

describe("roles: a secret of a source is never a target's, and the reverse", () => {
  it("refuses a target that names a source's HMAC secret, naming the source", async () => {
    const source = freshId();
    await putSource(source, { auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET" } });
    const r = await put("targets", freshId("t"), { url: TARGET_URL, auth: { type: "header", name: "X-Key", valueEnv: "TEST_HMAC_SECRET" } });
    expect(r.status).toBe(400);
    expect(r.body.fields).toContainEqual({ path: "auth.valueEnv", message: expect.stringContaining("which source:") });
  });

  it("refuses a source that names a target's signing secret, and one that names it as the previous secret", async () => {
    const target = freshId("t");
    await putTarget(target, { url: TARGET_URL, signing: { secretEnv: "TEST_SIGNING_SECRET" } });
    const a = await put("sources", freshId(), { auth: { type: "hmac", secretEnv: "TEST_SIGNING_SECRET" } });
    expect(a.status).toBe(400);
    expect(a.body.fields).toContainEqual({ path: "auth.secretEnv", message: expect.stringContaining(`target:${target}`) });
    const b = await put("sources", freshId(), { auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET", previousSecretEnv: "TEST_SIGNING_SECRET" } });
    expect(b.status).toBe(400);
    expect(b.body.fields.map((f) => f.path)).toContain("auth.previousSecretEnv");
  });

  it("treats both documents as invalid when a target written to KV names a source's secret: the source answers 503, the target holds events of other sources", async () => {
    const shared = freshId();
    const other = freshId();
    const target = freshId("t");
    await putSource(shared);
    await putSource(other, { auth: { type: "basic", username: "cp", passwordEnv: "TEST_BASIC_PASSWORD" } });
    await putTarget(target, { url: TARGET_URL, auth: { type: "header", name: "X-Key", valueEnv: "TEST_HMAC_SECRET" } });
    const listed = (await (await admin(`/targets/${target}`)).json()) as { valid: boolean; errors: { path: string; message: string }[] };
    expect(listed).toMatchObject({ valid: false });
    expect(listed.errors).toContainEqual({ path: "auth.valueEnv", message: expect.stringContaining("which source:") });
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    expect((await postWebhook(shared)).status).toBe(503);

    const edc = fakeTarget();
    const id = crypto.randomUUID();
    const basic = `Basic ${btoa("cp:test-basic-password")}`;
    expect((await postWebhook(other, { deliveryId: id, sign: false, headers: { authorization: basic } })).status).toBe(200);
    await runDurableObjectAlarm(ledgerOf(other));
    await fireAlarm(outboxOf(target));
    expect(edc.sent).toHaveLength(0);
    expect((await outboxOf(target).getDispatch(other, id))?.dispatch.state).toBe("held");
  });

  it("answers 503 for a source written to KV whose secret is a target's", async () => {
    const source = freshId();
    await putTarget(freshId("t"), { url: TARGET_URL, auth: { type: "bearer", tokenEnv: "TEST_BEARER_TOKEN" } });
    await putSource(source, { auth: { type: "bearer", tokenEnv: "TEST_BEARER_TOKEN" } });
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const res = await postWebhook(source, { sign: false, headers: { authorization: "Bearer test-bearer-token" } });
    expect(res.status).toBe(503);
  });
});
