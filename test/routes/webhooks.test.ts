import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { CENTREPOINT_IP, freshId, ledgerOf, postWebhook, putSource, sign, uploadBody } from "../support/helpers";

async function listAll(source: string) {
  return ledgerOf(source).list({ limit: 500 });
}

describe("routing and source lookup", () => {
  it("answers 404 for an unknown source", async () => {
    const res = await postWebhook(freshId());
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
  });

  it("answers 404 for a disabled source and records nothing", async () => {
    const id = freshId();
    await putSource(id, { enabled: false });
    expect((await postWebhook(id)).status).toBe(404);
    expect(await listAll(id)).toHaveLength(0);
  });

  it("answers 404 for a source id that cannot be a KV id", async () => {
    expect((await postWebhook("BAD%20ID")).status).toBe(404);
  });

  it("answers 503 for an invalid source document and records nothing", async () => {
    const id = freshId();
    await env.CONFIG.put(`source:${id}`, JSON.stringify({ auth: { type: "hmac" } }));
    const { clearConfigCache } = await import("../../src/config/store");
    clearConfigCache();
    const res = await postWebhook(id);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: "source_misconfigured" });
    expect(await listAll(id)).toHaveLength(0);
  });
});

describe("source IP allow-list", () => {
  it("refuses an address outside the default CentrePoint list with 403", async () => {
    const id = freshId();
    await putSource(id);
    const res = await postWebhook(id, { ip: "203.0.113.7" });
    expect(res.status).toBe(403);
    expect(await listAll(id)).toHaveLength(0);
  });

  it("refuses a request without CF-Connecting-IP", async () => {
    const id = freshId();
    await putSource(id);
    expect((await postWebhook(id, { ip: null })).status).toBe(403);
  });

  it("accepts every published CentrePoint address by default", async () => {
    const id = freshId();
    await putSource(id);
    expect((await postWebhook(id, { ip: "40.87.47.137" })).status).toBe(200);
  });

  it("accepts addresses inside configured IPv4 and IPv6 CIDRs", async () => {
    const id = freshId();
    await putSource(id, { allowedIps: ["10.1.0.0/16", "2001:db8::/32"] });
    expect((await postWebhook(id, { ip: "10.1.200.3" })).status).toBe(200);
    expect((await postWebhook(id, { ip: "2001:db8::42" })).status).toBe(200);
    expect((await postWebhook(id, { ip: "10.2.0.1" })).status).toBe(403);
  });

  it('accepts any address with "*"', async () => {
    const id = freshId();
    await putSource(id, { allowedIps: ["*"] });
    expect((await postWebhook(id, { ip: "198.51.100.1" })).status).toBe(200);
  });
});

describe("HMAC signatures", () => {
  it("verifies the protocol reference's test vector", async () => {
    const id = freshId();
    await putSource(id);
    const res = await postWebhook(id, {
      body: '{"Test":"Value"}',
      sign: false,
      headers: { "X-ActiGraph-Signature": "Ri20SCicySZmIf2D4kCY5KWEJrsqI7W8sWXMADj1RaQ=" },
    });
    expect(res.status).toBe(200);
  });

  it("refuses a missing signature with 401 and records nothing", async () => {
    const id = freshId();
    await putSource(id);
    const res = await postWebhook(id, { sign: false });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: "unauthorized" });
    expect(await listAll(id)).toHaveLength(0);
  });

  it("refuses a signature over a different body", async () => {
    const id = freshId();
    await putSource(id);
    const res = await postWebhook(id, { body: uploadBody(), sign: false, headers: { "x-actigraph-signature": await sign(uploadBody({ uploadId: "1" })) } });
    expect(res.status).toBe(401);
  });

  it("refuses malformed and hex-encoded signatures", async () => {
    const id = freshId();
    await putSource(id);
    for (const bad of ["not base64!", "sha1=81CAC7", "46a2db48", ""]) {
      expect((await postWebhook(id, { sign: false, headers: { "x-actigraph-signature": bad } })).status).toBe(401);
    }
  });

  it("fails closed with 401 when the named secret is not set", async () => {
    const id = freshId();
    await putSource(id, { auth: { type: "hmac", secretEnv: "NO_SUCH_SECRET" } });
    expect((await postWebhook(id)).status).toBe(401);
    expect(await listAll(id)).toHaveLength(0);
  });

  it("accepts the previous secret during a rotation, and only while the document names it", async () => {
    const id = freshId();
    const body = uploadBody();
    const oldSignature = await sign(body, "test-previous-hmac-secret");
    await putSource(id, { auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET", previousSecretEnv: "TEST_HMAC_SECRET_OLD" } });
    expect((await postWebhook(id, { body, sign: false, headers: { "x-actigraph-signature": oldSignature } })).status).toBe(200);
    expect((await postWebhook(id, { body: uploadBody({ uploadId: "2" }) })).status).toBe(200);
    await putSource(id, { auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET" } });
    expect((await postWebhook(id, { body, sign: false, headers: { "x-actigraph-signature": oldSignature } })).status).toBe(401);
  });

  it("matches header names in any casing", async () => {
    const id = freshId();
    await putSource(id);
    const body = uploadBody();
    const res = await exports.default.fetch(`http://relay.test/webhooks/${id}`, {
      method: "POST",
      headers: {
        "X-Actigraph-Signature": await sign(body),
        "x-ActiGraph-Event": "upload",
        "X-ACTIGRAPH-DELIVERY": "case-1",
        "CF-Connecting-IP": CENTREPOINT_IP,
        "Content-Type": "application/json; charset=utf-8",
        Expect: "100-continue",
      },
      body,
    });
    expect(res.status).toBe(200);
    expect((await ledgerOf(id).get("case-1"))?.event).toBe("upload");
  });
});

describe("Basic and bearer auth", () => {
  const basic = (user: string, pass: string) => `Basic ${btoa(`${user}:${pass}`)}`;

  it("accepts the configured Basic credentials", async () => {
    const id = freshId();
    await putSource(id, { auth: { type: "basic", username: "centrepoint", passwordEnv: "TEST_BASIC_PASSWORD" } });
    expect((await postWebhook(id, { sign: false, headers: { authorization: basic("centrepoint", "test-basic-password") } })).status).toBe(200);
  });

  it("refuses a wrong Basic password, a wrong user and a malformed header", async () => {
    const id = freshId();
    await putSource(id, { auth: { type: "basic", username: "centrepoint", passwordEnv: "TEST_BASIC_PASSWORD" } });
    for (const authorization of [basic("centrepoint", "nope"), basic("other", "test-basic-password"), "Basic !!!", "Bearer x"]) {
      expect((await postWebhook(id, { sign: false, headers: { authorization } })).status).toBe(401);
    }
    expect(await listAll(id)).toHaveLength(0);
  });

  it("accepts the configured bearer token and refuses another", async () => {
    const id = freshId();
    await putSource(id, { auth: { type: "bearer", tokenEnv: "TEST_BEARER_TOKEN" } });
    expect((await postWebhook(id, { sign: false, headers: { authorization: "Bearer test-bearer-token" } })).status).toBe(200);
    expect((await postWebhook(id, { sign: false, headers: { authorization: "Bearer test-bearer-tokeN" } })).status).toBe(401);
  });

  it("never stores the Authorization value", async () => {
    const id = freshId();
    await putSource(id, { auth: { type: "bearer", tokenEnv: "TEST_BEARER_TOKEN" } });
    await postWebhook(id, { sign: false, deliveryId: "redact-1", headers: { authorization: "Bearer test-bearer-token" } });
    const stored = await ledgerOf(id).get("redact-1");
    expect(stored?.headers.authorization).toBe("[redacted]");
    expect(JSON.stringify(stored?.headers)).not.toContain("test-bearer-token");
  });
});

describe("validation handshake", () => {
  const handshakeBody = (code: string) => JSON.stringify({ WebhookId: "74", ValidationCode: code });

  it("echoes the code in X-ActiGraph-Hook-Secret with 200 and records no delivery", async () => {
    const id = freshId();
    await putSource(id);
    const code = "1d3ad7a1-91c9-4ffc-8562-5bad545e6a40";
    const res = await postWebhook(id, { event: "validation", body: handshakeBody(code), headers: { "x-actigraph-hook-secret": code } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-actigraph-hook-secret")).toBe(code);
    expect(await listAll(id)).toHaveLength(0);
    const audit = (await ledgerOf(id).listHandshakes(10)).items;
    expect(audit[0]).toMatchObject({ outcome: "echoed", authenticated: true, webhookId: "74" });
  });

  it("detects a handshake by its ValidationCode body alone and takes the code from it", async () => {
    const id = freshId();
    await putSource(id);
    const res = await postWebhook(id, { event: null, body: handshakeBody("abc-123") });
    expect(res.headers.get("x-actigraph-hook-secret")).toBe("abc-123");
  });

  it("answers a handshake that carries no credentials, recorded as unauthenticated", async () => {
    const id = freshId();
    await putSource(id);
    const res = await postWebhook(id, { event: "Validation", sign: false, body: handshakeBody("c-1"), headers: { "x-actigraph-hook-secret": "c-1" } });
    expect(res.status).toBe(200);
    expect((await ledgerOf(id).listHandshakes(1)).items[0]).toMatchObject({ authenticated: false, outcome: "echoed" });
  });

  it("refuses a handshake whose credentials are present but wrong", async () => {
    const id = freshId();
    await putSource(id);
    const res = await postWebhook(id, {
      event: "validation",
      sign: false,
      body: handshakeBody("c-2"),
      headers: { "x-actigraph-signature": await sign("other") },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("x-actigraph-hook-secret")).toBeNull();
  });

  it("refuses to echo a code with control characters or absurd length", async () => {
    const id = freshId();
    await putSource(id);
    for (const code of ["abc\r\nSet-Cookie: x=1", "x".repeat(129), "tab\there"]) {
      const res = await postWebhook(id, { event: "validation", body: handshakeBody(code) });
      expect(res.status).toBe(400);
      expect(res.headers.get("x-actigraph-hook-secret")).toBeNull();
      expect(res.headers.get("set-cookie")).toBeNull();
    }
    expect((await ledgerOf(id).listHandshakes(10)).items.every((h) => h.outcome.startsWith("refused"))).toBe(true);
  });

  it("is still subject to the IP allow-list", async () => {
    const id = freshId();
    await putSource(id);
    expect((await postWebhook(id, { event: "validation", body: handshakeBody("c-3"), ip: "203.0.113.9" })).status).toBe(403);
  });
});

describe("body limits and media types", () => {
  it("answers 413 when Content-Length is over the limit", async () => {
    const id = freshId();
    await putSource(id, { allowedIps: ["*"] });
    const big = JSON.stringify({ pad: "x".repeat(300_000) });
    const res = await postWebhook(id, { body: big });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "payload_too_large" });
    expect(await listAll(id)).toHaveLength(0);
  });

  it("answers 413 for a streamed body without Content-Length that passes the limit", async () => {
    const id = freshId();
    await putSource(id, { allowedIps: ["*"] });
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await postWebhook(id, { body: stream, sign: false });
    expect(res.status).toBe(413);
  });

  it("answers 415 for form and multipart bodies", async () => {
    const id = freshId();
    await putSource(id);
    expect((await postWebhook(id, { headers: { "content-type": "application/x-www-form-urlencoded" } })).status).toBe(415);
    expect((await postWebhook(id, { headers: { "content-type": "multipart/form-data; boundary=x" } })).status).toBe(415);
  });
});

describe("recording deliveries", () => {
  it("stores the raw body byte-exact with its SHA-256", async () => {
    const id = freshId();
    await putSource(id);
    const body = '{ "status":"started",\n "uploadId":"1","subjectId":"2","studyId":"3" , "note":"caf\u00e9" }';
    const res = await postWebhook(id, { body, deliveryId: "raw-1" });
    expect(await res.json()).toMatchObject({ status: "accepted", deliveryId: "raw-1", kind: "upload.started" });
    const stored = await ledgerOf(id).get("raw-1");
    expect(new TextDecoder().decode(stored!.body)).toBe(body);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
    expect(stored!.bodySha256).toBe([...digest].map((b) => b.toString(16).padStart(2, "0")).join(""));
  });

  it("stores the normalized envelope beside the record", async () => {
    const id = freshId();
    await putSource(id);
    await postWebhook(id, { deliveryId: "env-1" });
    const envelope = JSON.parse((await ledgerOf(id).get("env-1"))!.envelope);
    expect(envelope).toMatchObject({ specversion: "1.0", id: "env-1", type: "com.actigraph.centrepoint.upload.completed" });
  });

  it("answers a repeated delivery id with duplicate and keeps one record with a counter", async () => {
    const id = freshId();
    await putSource(id);
    expect(await (await postWebhook(id, { deliveryId: "dup-1" })).json()).toMatchObject({ status: "accepted" });
    const second = await postWebhook(id, { deliveryId: "dup-1" });
    expect(second.status).toBe(200);
    expect(await second.json()).toMatchObject({ status: "duplicate" });
    const rows = await listAll(id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.duplicateCount).toBe(1);
  });

  it("keeps exactly one record for fifty concurrent posts of one id", async () => {
    const id = freshId();
    await putSource(id);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => postWebhook(id, { deliveryId: "flood-1" }).then((r) => r.json() as Promise<{ status: string }>)),
    );
    expect(results.filter((r) => r.status === "accepted")).toHaveLength(1);
    expect(results.filter((r) => r.status === "duplicate")).toHaveLength(49);
    const rows = await listAll(id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.duplicateCount).toBe(49);
  });

  it("records and acknowledges a body that is not JSON, marked for attention", async () => {
    const id = freshId();
    await putSource(id);
    const res = await postWebhook(id, { body: "<html>oops", deliveryId: "nonjson-1" });
    expect(res.status).toBe(200);
    const stored = await ledgerOf(id).get("nonjson-1");
    expect(stored?.kind).toBe("unknown");
    expect(stored?.attention).toBeTruthy();
  });

  it("records and acknowledges an unknown event name, marked for attention", async () => {
    const id = freshId();
    await putSource(id);
    expect((await postWebhook(id, { event: "subject_created", body: '{"a":1}', deliveryId: "unk-1" })).status).toBe(200);
    expect((await ledgerOf(id).get("unk-1"))?.attention).toBeTruthy();
  });

  it("derives a deterministic delivery id when X-ActiGraph-Delivery is absent", async () => {
    const id = freshId();
    await putSource(id);
    const first = (await (await postWebhook(id, { deliveryId: null })).json()) as { deliveryId: string; status: string };
    const second = (await (await postWebhook(id, { deliveryId: null })).json()) as { deliveryId: string; status: string };
    expect(first.deliveryId).toMatch(/^derived-[0-9a-f]{32}$/);
    expect(second).toEqual({ ...first, status: "duplicate" });
  });

  it("keeps deliveries across a Durable Object eviction", async () => {
    const { evictDurableObject } = await import("cloudflare:test");
    const id = freshId();
    await putSource(id);
    await postWebhook(id, { deliveryId: "evict-1" });
    await evictDurableObject(ledgerOf(id));
    expect((await ledgerOf(id).get("evict-1"))?.deliveryId).toBe("evict-1");
    expect((await (await postWebhook(id, { deliveryId: "evict-1" })).json()) as object).toMatchObject({ status: "duplicate" });
  });
});
