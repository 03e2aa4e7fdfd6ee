import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { admin, freshId, ledgerOf, postWebhook, putSource } from "../support/helpers";
import { clockForEachTest } from "../support/clock";

describe("admin authentication", () => {
  it("answers 401 without a token and with a wrong one", async () => {
    expect((await exports.default.fetch("http://relay.test/admin/sources")).status).toBe(401);
    const wrong = await exports.default.fetch("http://relay.test/admin/sources", { headers: { authorization: "Bearer test-admin-tokeN" } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: "unauthorized" });
  });

  it("answers 503 and stays closed when ADMIN_TOKEN is not set", async () => {
    const res = await app.request("/admin/sources", { headers: { authorization: "Bearer " } }, { ...env, ADMIN_TOKEN: undefined });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: "admin_disabled" });
  });

  it("lets the right token in", async () => {
    expect((await admin("/sources")).status).toBe(200);
  });
});

describe("sources API", () => {
  it("creates a source with defaults filled in, reads it back, and ingress uses it", async () => {
    const id = freshId();
    const put = await admin(`/sources/${id}`, { method: "PUT", body: JSON.stringify({ auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET" } }) });
    expect(put.status).toBe(201);
    const got = (await (await admin(`/sources/${id}`)).json()) as { config: Record<string, unknown> };
    expect(got.config).toEqual({ provider: "centrepoint", auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET" }, allowedIps: ["actigraph"], enabled: true });
    expect((await postWebhook(id)).status).toBe(200);
  });

  it("refuses an invalid document with field-level errors and stores nothing", async () => {
    const id = freshId();
    const res = await admin(`/sources/${id}`, {
      method: "PUT",
      body: JSON.stringify({ auth: { type: "hmac", secretEnv: "lower case!" }, allowedIps: ["999.1.1.1/8"], extra: 1 }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; fields: { path: string }[] };
    expect(body.error).toBe("invalid_document");
    expect(body.fields.map((f) => f.path).sort()).toEqual(["(document)", "allowedIps.0", "auth.secretEnv"]);
    expect(await env.CONFIG.get(`source:${id}`)).toBeNull();
  });

  it("refuses a body that is not JSON and an id that cannot be a key", async () => {
    expect((await admin(`/sources/${freshId()}`, { method: "PUT", body: "{" })).status).toBe(400);
    expect((await admin(`/sources/Bad.Id`, { method: "PUT", body: JSON.stringify({ auth: { type: "none" } }) })).status).toBe(400);
  });

  it("refuses a secret value where a secret name belongs", async () => {
    const res = await admin(`/sources/${freshId()}`, { method: "PUT", body: JSON.stringify({ auth: { type: "hmac", secret: "plain-text-secret" } }) });
    expect(res.status).toBe(400);
    expect(await res.text()).not.toContain("plain-text-secret");
  });

  it("lists a document written with wrangler kv that fails validation, with its errors", async () => {
    const id = freshId();
    await env.CONFIG.put(`source:${id}`, '{"auth":{"type":"carrier-pigeon"}}');
    const list = (await (await admin("/sources")).json()) as { items: { id: string; valid: boolean; errors?: unknown[] }[] };
    const item = list.items.find((i) => i.id === id);
    expect(item?.valid).toBe(false);
    expect(item?.errors?.length).toBeGreaterThan(0);
  });

  it("reads KV afresh, so a document changed with wrangler kv shows at once", async () => {
    const id = freshId();
    await putSource(id);
    expect((await postWebhook(id)).status).toBe(200); // warms this isolate's cache
    await env.CONFIG.put(`source:${id}`, JSON.stringify({ auth: { type: "none" }, enabled: false }));
    const got = (await (await admin(`/sources/${id}`)).json()) as { config: { enabled: boolean } };
    expect(got.config.enabled).toBe(false);
  });

  it("deletes a source, after which ingress answers 404", async () => {
    const id = freshId();
    await putSource(id);
    const reason = { "x-audit-reason": "study closed" };
    expect((await admin(`/sources/${id}`, { method: "DELETE", headers: reason })).status).toBe(204);
    expect((await admin(`/sources/${id}`, { method: "DELETE", headers: reason })).status).toBe(404);
    expect((await postWebhook(id)).status).toBe(404);
  });
});

describe("deliveries API", () => {
  it("lists deliveries newest first with cursor pagination and no repeats", async () => {
    const id = freshId();
    await putSource(id);
    for (let i = 0; i < 5; i++) await postWebhook(id, { deliveryId: `page-${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 5; page++) {
      const q: string = `/deliveries?source=${id}&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const body = (await (await admin(q)).json()) as { items: { deliveryId: string }[]; next: string | null };
      seen.push(...body.items.map((i) => i.deliveryId));
      cursor = body.next;
      if (!cursor) break;
    }
    expect(seen).toEqual(["page-4", "page-3", "page-2", "page-1", "page-0"]);
  });

  it("filters by kind glob and by subject", async () => {
    const id = freshId();
    await putSource(id);
    await postWebhook(id, { deliveryId: "k-1", body: JSON.stringify({ status: "started", uploadId: "1", subjectId: "7", studyId: "3" }) });
    await postWebhook(id, {
      deliveryId: "k-2",
      event: "raw_processing_complete",
      body: JSON.stringify({ study_id: 3, subject_id: 8, status: "Completed", error_message: null }),
    });
    const uploads = (await (await admin(`/deliveries?source=${id}&kind=upload.*`)).json()) as { items: { deliveryId: string }[] };
    expect(uploads.items.map((i) => i.deliveryId)).toEqual(["k-1"]);
    const bySubject = (await (await admin(`/deliveries?source=${id}&subject=studies/3/subjects/8`)).json()) as { items: { deliveryId: string }[] };
    expect(bySubject.items.map((i) => i.deliveryId)).toEqual(["k-2"]);
  });

  it("searches by upload id, delivery id and subject", async () => {
    const id = freshId();
    await putSource(id);
    await postWebhook(id, { deliveryId: "q-1", body: JSON.stringify({ status: "started", uploadId: 777001, subjectId: "5", studyId: "9" }) });
    await postWebhook(id, { deliveryId: "q-2", body: JSON.stringify({ status: "started", uploadId: "777002", subjectId: "6", studyId: "9" }) });
    const search = async (q: string) =>
      ((await (await admin(`/deliveries?source=${id}&q=${encodeURIComponent(q)}`)).json()) as { items: { deliveryId: string }[] }).items.map(
        (i) => i.deliveryId,
      );
    expect(await search("777001")).toEqual(["q-1"]);
    expect(await search("q-2")).toEqual(["q-2"]);
    expect(await search("studies/9/subjects/6")).toEqual(["q-2"]);
    expect(await search("77700")).toEqual([]);
  });

  it("refuses an invalid filter with a field-level 400", async () => {
    const res = await admin(`/deliveries?from=yesterday`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { fields: { path: string }[] }).fields[0]?.path).toBe("from");
  });

  it("shows one delivery with redacted headers, body, envelope and duplicate count", async () => {
    const id = freshId();
    await putSource(id);
    await postWebhook(id, { deliveryId: "d-1" });
    await postWebhook(id, { deliveryId: "d-1" });
    const res = await admin(`/deliveries/${id}/d-1`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body.duplicateCount).toBe(1);
    expect(body.headers["x-actigraph-event"]).toBe("upload");
    expect(JSON.parse(body.body.text)).toMatchObject({ uploadId: "85045" });
    expect(body.envelope.id).toBe("d-1");
    expect((await admin(`/deliveries/${id}/nope`)).status).toBe(404);
  });
});

describe("integrity", () => {
  it("reports an intact chain", async () => {
    const id = freshId();
    await putSource(id);
    for (let i = 0; i < 3; i++) await postWebhook(id, { deliveryId: `i-${i}` });
    expect(await (await admin(`/sources/${id}/integrity`)).json()).toMatchObject({ ok: true, checked: 3, firstBroken: null });
  });
});

describe("integrity runs in the background", () => {
  // Controlled clock: the ledger's alarm runs only when the test fires it.
  clockForEachTest({ quiet: [] });

  it("answers the report without waiting for a long run, which goes on in the background; POST starts a full re-verification", async () => {
    const id = freshId();
    await putSource(id);
    for (let i = 0; i < 3; i++) await postWebhook(id, { deliveryId: `j-${i}` });
    await runInDurableObject(
      ledgerOf(id),
      (instance) => void ((instance as unknown as { integritySlice: object }).integritySlice = { rows: 2, bytes: 1 << 20 }),
    );
    const first = await admin(`/sources/${id}/integrity`);
    expect(await first.json()).toMatchObject({ ok: null, checkedAt: null, verifiedThrough: 0, head: 3, running: { mode: "incremental", through: 2, upTo: 3 } });
    await runDurableObjectAlarm(ledgerOf(id));
    expect(await (await admin(`/sources/${id}/integrity`)).json()).toMatchObject({
      ok: true,
      mode: "incremental",
      checked: 3,
      verifiedThrough: 3,
      running: null,
    });
    const full = await admin(`/sources/${id}/integrity`, { method: "POST", body: JSON.stringify({ full: true }) });
    expect(full.status).toBe(202);
    expect(await full.json()).toMatchObject({ ok: true, mode: "incremental", running: { mode: "full", through: 2, upTo: 3 } });
    await runDurableObjectAlarm(ledgerOf(id));
    expect(await (await admin(`/sources/${id}/integrity`, { method: "POST", body: "{}" })).json()).toMatchObject({ ok: true, mode: "full", checked: 3 });
    expect((await admin(`/sources/${id}/integrity`, { method: "POST", body: JSON.stringify({ full: "yes" }) })).status).toBe(400);
  });
});
