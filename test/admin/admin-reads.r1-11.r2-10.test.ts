import { env, listDurableObjectIds } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { clearConfigCache } from "../../src/config/store";
import { admin, ADMIN_TOKEN, freshId, ledgerOf, postWebhook, putSource } from "../support/helpers";
import { clockForEachTest } from "../support/clock";

/**
 * Review finding 11: a target stored under an id the API refuses could receive events but never be
 * opened, resumed or deleted; reads of unknown ids created Durable Objects; admin JSON was cacheable.
 */

clockForEachTest({ quiet: [] });

describe("documents stored under an id the API refuses", () => {
  it("lists them as invalid, naming the id, and plans no events for them", async () => {
    const source = freshId();
    await putSource(source);
    await env.CONFIG.put("target:Bad.Target", JSON.stringify({ url: "https://edc.example/hooks" }));
    clearConfigCache();
    const list = (await (await admin("/targets")).json()) as { items: { id: string; valid: boolean; errors?: { path: string }[] }[] };
    const bad = list.items.find((t) => t.id === "Bad.Target");
    expect(bad).toMatchObject({ valid: false });
    expect(bad?.errors?.map((e) => e.path)).toContain("id");
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const id = crypto.randomUUID();
    await postWebhook(source, { deliveryId: id });
    expect((await ledgerOf(source).get(id))?.handoffs.map((h) => h.targetId)).not.toContain("Bad.Target");
  });
});

describe("reads of unknown ids", () => {
  it("answer 404 without creating a Durable Object", async () => {
    const before = [(await listDurableObjectIds(env.LEDGER)).length, (await listDurableObjectIds(env.OUTBOX)).length];
    for (const path of [
      "/sources/no-such-source/integrity",
      "/sources/no-such-source/handshakes",
      "/sources/no-such-source/export",
      "/deliveries/no-such-source/some-id",
      "/targets/no-such-target/health",
      "/targets/no-such-target/dead",
    ]) {
      expect((await admin(path)).status, path).toBe(404);
    }
    expect((await admin("/targets/no-such-target/resume", { method: "POST" })).status).toBe(404);
    expect((await admin("/sources/no-such-source/integrity", { method: "POST" })).status).toBe(404);
    for (const path of ["/admin/ui/sources/no-such-source", "/admin/ui/targets/no-such-target", "/admin/ui/deliveries/no-such-source/some-id"]) {
      const res = await exports.default.fetch(`http://relay.test${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status, path).toBe(404);
    }
    expect([(await listDurableObjectIds(env.LEDGER)).length, (await listDurableObjectIds(env.OUTBOX)).length]).toEqual(before);
  });
});

describe("the overview and metrics with documents stored under an invalid id", () => {
  // Issue 16, item 10 (d): every listed document got its Durable Objects opened, whatever its id.
  it("list them as invalid without opening any Durable Object for them", async () => {
    const badSource = "Bad.Source";
    const badTarget = "Bad.Target2";
    const block = { studyId: 1, webhookId: 2, clientIdEnv: "TEST_CP_CLIENT_ID", clientSecretEnv: "TEST_CP_CLIENT_SECRET" };
    await env.CONFIG.put(`source:${badSource}`, JSON.stringify({ auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET" }, centrepoint: block }));
    await env.CONFIG.put(`target:${badTarget}`, JSON.stringify({ url: "https://edc.example/hooks" }));
    clearConfigCache();
    const overview = await exports.default.fetch("http://relay.test/admin/", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(overview.status).toBe(200);
    const page = await overview.text();
    expect(page).toContain(badSource);
    expect(page).toContain(badTarget);
    expect((await admin("/metrics")).status).toBe(200);
    expect((await admin("/deliveries")).status).toBe(200);
    expect((await admin(`/deliveries?q=${crypto.randomUUID()}`)).status).toBe(200);
    const search = await exports.default.fetch(`http://relay.test/admin/ui/deliveries?q=${crypto.randomUUID()}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(search.status).toBe(200);
    const opened = async <T extends Rpc.DurableObjectBranded>(ns: DurableObjectNamespace<T>, name: string) =>
      (await listDurableObjectIds(ns)).some((id) => id.equals(ns.idFromName(name)));
    expect(await opened(env.LEDGER, badSource)).toBe(false);
    expect(await opened(env.RECONCILER, badSource)).toBe(false);
    expect(await opened(env.PULLER, badSource)).toBe(false);
    expect(await opened(env.OUTBOX, badTarget)).toBe(false);
  });
});

describe("admin JSON", () => {
  it("is sent with Cache-Control: no-store", async () => {
    for (const path of ["/sources", "/targets", "/deliveries", "/metrics", "/openapi.json"]) {
      expect((await admin(path)).headers.get("cache-control"), path).toBe("no-store");
    }
    expect((await admin("/sources/nope")).headers.get("cache-control")).toBe("no-store");
  });
});
