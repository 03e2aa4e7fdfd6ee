import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { targetSchema } from "../../src/config/schemas";
import { buildRequest, classifyError, CONTENT_TYPE, type ResolvedTarget, resolveTarget, sendRequest } from "../../src/outbox/attempt";
import { USER_AGENT } from "../../src/version";
import { makeItem, SIGNING_SECRET } from "../support/outbox";

const target = (doc: Record<string, unknown> = {}) => targetSchema.parse({ url: "https://edc.example/hooks", ...doc });

function resolved(doc: Record<string, unknown> = {}): ResolvedTarget {
  const r = resolveTarget(target(doc), env, false);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("resolveTarget", () => {
  it("builds a bearer header from the named secret", () => {
    expect(resolved({ auth: { type: "bearer", tokenEnv: "TEST_TARGET_TOKEN" } }).auth).toEqual(["authorization", "Bearer test-target-token"]);
  });

  it("builds a basic header from the username and the named password", () => {
    expect(resolved({ auth: { type: "basic", username: "edc", passwordEnv: "TEST_TARGET_TOKEN" } }).auth).toEqual([
      "authorization",
      `Basic ${btoa("edc:test-target-token")}`,
    ]);
  });

  it("builds a custom header from the named value", () => {
    expect(resolved({ auth: { type: "header", name: "X-Api-Key", valueEnv: "TEST_TARGET_TOKEN" } }).auth).toEqual(["x-api-key", "test-target-token"]);
  });

  it("is a config error naming the secret (not its value) when an auth secret is not set", () => {
    const r = resolveTarget(target({ auth: { type: "bearer", tokenEnv: "NOT_SET_ANYWHERE" } }), env, false);
    expect(r).toEqual({ ok: false, error: "secret NOT_SET_ANYWHERE (outbound bearer auth) is not set" });
  });

  it("is a config error when the signing secret is not set or not base64", () => {
    expect(resolveTarget(target({ signing: { secretEnv: "NOT_SET_ANYWHERE" } }), env, false).ok).toBe(false);
    expect(resolveTarget(target({ signing: { secretEnv: "TEST_HMAC_SECRET" } }), env, false)).toMatchObject({
      ok: false,
      error: expect.stringContaining("whsec_"),
    });
  });

  it("applies the URL policy", () => {
    expect(resolveTarget(target({ url: "http://127.0.0.1:9000/" }), env, false).ok).toBe(false);
    expect(resolveTarget(target({ url: "http://127.0.0.1:9000/" }), env, true).ok).toBe(true);
  });
});

describe("buildRequest", () => {
  const NOW = Date.UTC(2030, 5, 1, 12, 0, 0, 750);

  it("sends the CloudEvents envelope with its content type by default", async () => {
    const item = makeItem();
    const req = await buildRequest(item, resolved(), NOW);
    expect(text(req.body)).toBe(item.envelope);
    expect(req.headers["content-type"]).toBe(CONTENT_TYPE.cloudevents);
    expect(req.headers["x-actigraph-event"]).toBeUndefined();
  });

  it("sends the original body and the x-actigraph-* headers in raw format", async () => {
    const item = makeItem();
    const req = await buildRequest(item, resolved({ format: "raw" }), NOW);
    expect(req.body).toEqual(item.body);
    expect(req.headers).toMatchObject({ "content-type": CONTENT_TYPE.raw, "x-actigraph-event": "upload", "x-actigraph-delivery": item.deliveryId });
  });

  it("sets webhook-id to the delivery id, webhook-timestamp in seconds, and the relay's User-Agent", async () => {
    const item = makeItem({ deliveryId: "38a1d5a7-d3df-b80f-48a1-0535801b687b" });
    const req = await buildRequest(item, resolved(), NOW);
    expect(req.headers).toMatchObject({
      "webhook-id": "38a1d5a7-d3df-b80f-48a1-0535801b687b",
      "webhook-timestamp": String(Math.floor(NOW / 1000)),
      "user-agent": USER_AGENT,
    });
  });

  it("does not sign without a signing secret", async () => {
    expect((await buildRequest(makeItem(), resolved(), NOW)).headers["webhook-signature"]).toBeUndefined();
  });

  it("signs so that the Standard Webhooks reference library verifies it", async () => {
    const now = Date.now();
    const req = await buildRequest(makeItem(), resolved({ signing: { secretEnv: "TEST_SIGNING_SECRET" } }), now);
    expect(req.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(() => new Webhook(SIGNING_SECRET).verify(text(req.body), req.headers)).not.toThrow();
  });

  it("signs the raw body byte-exact too", async () => {
    const now = Date.now();
    const item = makeItem({ body: new TextEncoder().encode('{"studyId":"189",  "note":"spacing kept ✓"}') });
    const req = await buildRequest(item, resolved({ format: "raw", signing: { secretEnv: "TEST_SIGNING_SECRET" } }), now);
    expect(() => new Webhook(SIGNING_SECRET).verify(text(req.body), req.headers)).not.toThrow();
  });

  it("produces a signature the receiver rejects when the body is altered", async () => {
    const now = Date.now();
    const req = await buildRequest(makeItem(), resolved({ signing: { secretEnv: "TEST_SIGNING_SECRET" } }), now);
    expect(() => new Webhook(SIGNING_SECRET).verify(`${text(req.body)} `, req.headers)).toThrow();
  });

  it("puts the configured auth header on the request", async () => {
    const req = await buildRequest(makeItem(), resolved({ auth: { type: "bearer", tokenEnv: "TEST_TARGET_TOKEN" } }), NOW);
    expect(req.headers.authorization).toBe("Bearer test-target-token");
  });
});

describe("sendRequest", () => {
  const req = { url: "https://edc.example/hooks", headers: { "content-type": "application/json" }, body: new Uint8Array([123, 125]) };
  const clock = () => {
    let t = 1000;
    return () => (t += 5);
  };

  it("POSTs without following redirects and reports success for 2xx", async () => {
    let init: RequestInit | undefined;
    const r = await sendRequest(req, {
      fetch: async (_url, i) => ((init = i), new Response("accepted", { status: 202 })),
      now: clock(),
      timeoutMs: 1000,
    });
    expect(init).toMatchObject({ method: "POST", redirect: "manual" });
    expect(r).toMatchObject({ ok: true, status: 202, body: "accepted", errorClass: null, durationMs: 5 });
  });

  it("reports a non-2xx answer as an http failure, keeping selected headers and the body", async () => {
    const r = await sendRequest(req, {
      fetch: async () => new Response("boom", { status: 500, headers: { "x-request-id": "abc", "set-cookie": "s=1" } }),
      now: clock(),
      timeoutMs: 1000,
    });
    expect(r).toMatchObject({ ok: false, status: 500, errorClass: "http", error: "HTTP 500", body: "boom" });
    expect(r.headers).toEqual({ "content-type": "text/plain;charset=UTF-8", "x-request-id": "abc" });
  });

  it("treats a redirect as a failure", async () => {
    const r = await sendRequest(req, {
      fetch: async () => new Response(null, { status: 302, headers: { location: "https://elsewhere/" } }),
      now: clock(),
      timeoutMs: 1000,
    });
    expect(r).toMatchObject({ ok: false, status: 302, errorClass: "http" });
  });

  it("keeps only the first 4 KiB of the response body", async () => {
    const r = await sendRequest(req, { fetch: async () => new Response("x".repeat(10_000), { status: 400 }), now: clock(), timeoutMs: 1000 });
    expect(r.body).toHaveLength(4096);
  });

  it("reads Retry-After on 429 and 503 only", async () => {
    const answer = (status: number) =>
      sendRequest(req, { fetch: async () => new Response("", { status, headers: { "retry-after": "7" } }), now: clock(), timeoutMs: 1000 });
    expect((await answer(429)).retryAfterMs).toBe(7000);
    expect((await answer(503)).retryAfterMs).toBe(7000);
    expect((await answer(500)).retryAfterMs).toBeNull();
  });

  it("classifies a fetch that outlives the timeout as timeout", async () => {
    const hang: typeof fetch = (_url, init) => new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)));
    const r = await sendRequest(req, { fetch: hang, now: clock(), timeoutMs: 10 });
    expect(r).toMatchObject({ ok: false, status: null, errorClass: "timeout", error: "no response within 10 ms" });
  });

  it("classifies a thrown network error and never throws", async () => {
    const r = await sendRequest(req, { fetch: async () => Promise.reject(new Error("Network connection lost.")), now: clock(), timeoutMs: 1000 });
    expect(r).toMatchObject({ ok: false, errorClass: "connect", error: "Network connection lost." });
  });
});

describe("classifyError", () => {
  it("tells timeout, dns, tls and connect apart", () => {
    expect(classifyError(new DOMException("The operation timed out.", "TimeoutError"))).toBe("timeout");
    expect(classifyError(new Error("DNS lookup failed"))).toBe("dns");
    expect(classifyError(new Error("TLS handshake failed: certificate has expired"))).toBe("tls");
    expect(classifyError(new Error("connection refused"))).toBe("connect");
  });
});
