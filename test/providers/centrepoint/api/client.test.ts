import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { ok } from "../../../../src/lib/result";
import { apiPath, clampLimit, describeApiError, endpointOf, reasonOf, type ApiBudget, type ApiError } from "../../../../src/providers/centrepoint/api/client";
import { ENDPOINT, getSubject, getWebhookRegistration } from "../../../../src/providers/centrepoint/api/endpoints";
import { CLIENT, createHarness, secretsOf, T0 } from "./setup";

afterEach(() => {
  vi.restoreAllMocks();
});

/** The error of a failed result (fails the test if it succeeded). */
function errorOf<T>(r: { ok: true; value: T } | { ok: false; error: ApiError }): ApiError {
  if (r.ok) throw new Error("expected an error");
  return r.error;
}

describe("requests", () => {
  it("sends a bearer token on every API call and the client credentials form to the token endpoint", async () => {
    const h = createHarness();
    const r = await getWebhookRegistration(h.api, 189, 74);
    expect(r.ok && r.value).toMatchObject({ id: "74", studyId: "189", isDisabled: false });
    const log = h.fake.requests();
    expect(log.map((e) => [e.method, e.path, e.status, e.bearer, e.scope])).toEqual([
      ["POST", "/connect/token", 200, false, "CentrePoint"],
      ["GET", "/centrepoint/v3/Studies/189/Webhooks/74", 200, true, "CentrePoint"],
    ]);
  });

  it("reports each request's endpoint template, status and duration", async () => {
    const h = createHarness();
    await getWebhookRegistration(h.api, 189, 74);
    expect(h.metrics).toEqual([
      { endpoint: "/connect/token", method: "POST", status: 200, ms: 0 },
      { endpoint: ENDPOINT.webhook, method: "GET", status: 200, ms: 0 },
    ]);
  });

  it("asks the budget before every HTTP request, token requests included", async () => {
    let asked = 0;
    const budget: ApiBudget = { acquire: async () => (asked++, ok(undefined)) };
    const h = createHarness({ client: { budget } });
    await getWebhookRegistration(h.api, 189, 74);
    await getWebhookRegistration(h.api, 189, 74);
    expect(asked).toBe(3);
  });

  it("waits for the budget when the wait fits in maxWaitMs", async () => {
    let refusals = 1;
    const budget: ApiBudget = { acquire: async () => (refusals-- > 0 ? { ok: false, error: { retryAfterMs: 1500 } } : ok(undefined)) };
    const h = createHarness({ client: { budget } });
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true);
    expect(h.sleeps).toEqual([1500]);
  });

  it("returns rate_limited when the budget's wait exceeds maxWaitMs", async () => {
    const budget: ApiBudget = { acquire: async () => ({ ok: false, error: { retryAfterMs: 45_000 } }) };
    const h = createHarness({ client: { budget } });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e).toEqual({ kind: "rate_limited", retryAfterMs: 45_000, endpoint: "/connect/token" });
    expect(h.fake.requests()).toEqual([]);
  });
});

describe("401", () => {
  it("invalidates the token, fetches a new one and retries once", async () => {
    const h = createHarness();
    await getWebhookRegistration(h.api, 189, 74);
    h.fake.expireTokens();
    const r = await getWebhookRegistration(h.api, 189, 74);
    expect(r.ok).toBe(true);
    expect(h.fake.tokenRequests()).toBe(2);
    expect(h.fake.requests().map((e) => e.status)).toEqual([200, 200, 401, 200, 200]);
  });

  it("a second 401 is an auth error", async () => {
    const h = createHarness();
    h.fake.failNext(2, { status: 401, body: "" });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e).toMatchObject({ kind: "auth", status: 401, endpoint: ENDPOINT.webhook });
    expect(h.fake.tokenRequests()).toBe(2);
    expect(h.fake.requests().filter((x) => x.path.startsWith("/centrepoint"))).toHaveLength(2);
  });

  it("bad client credentials are an auth error naming the server's reason", async () => {
    const h = createHarness({ client: { clientSecret: "not-the-right-secret" } });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e).toEqual({ kind: "auth", status: 400, reason: "invalid_client", endpoint: "/connect/token" });
    expect(h.fake.requests()).toHaveLength(1);
  });
});

describe("429", () => {
  it("honours Retry-After in seconds by sleeping, then succeeds", async () => {
    const h = createHarness();
    h.fake.failNext(1, { status: 429, retryAfter: "7" });
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true);
    expect(h.sleeps).toEqual([7000]);
  });

  it("honours Retry-After as an HTTP-date", async () => {
    const h = createHarness();
    h.fake.failNext(1, { status: 429, retryAfter: new Date(T0 + 5000).toUTCString() });
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true);
    expect(h.sleeps).toEqual([5000]);
  });

  it("returns rate_limited with the wait when Retry-After exceeds maxWaitMs", async () => {
    const h = createHarness();
    h.fake.failNext(1, { status: 429, retryAfter: "120" });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e).toEqual({ kind: "rate_limited", retryAfterMs: 120_000, endpoint: ENDPOINT.webhook });
    expect(h.sleeps).toEqual([]);
  });

  it("counts the waits of one call together against maxWaitMs", async () => {
    const h = createHarness({ client: { limits: { maxWaitMs: 20_000 } } });
    h.fake.failNext(3, { status: 429, retryAfter: "8" });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e.kind).toBe("rate_limited");
    expect(h.sleeps).toEqual([8000, 8000]);
  });

  it("rate-limits the token endpoint the same way", async () => {
    const h = createHarness();
    h.fake.failNext(1, { status: 429, retryAfter: "2", path: "/connect/token" });
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true);
    expect(h.sleeps).toEqual([2000]);
    expect(
      h.fake
        .requests()
        .filter((e) => e.path === "/connect/token")
        .map((e) => e.status),
    ).toEqual([429, 200]);
  });
});

describe("5xx and network errors", () => {
  it("retries a 5xx with full-jitter backoff, then succeeds", async () => {
    const h = createHarness();
    h.fake.failNext(2, { status: 503 });
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true);
    // random 0.5 of caps 500 ms and 1000 ms
    expect(h.sleeps).toEqual([250, 500]);
  });

  it("returns an http error once maxRetries are spent", async () => {
    const h = createHarness({ client: { limits: { maxRetries: 2 } } });
    h.fake.failNext(10, { status: 502, body: "Bad Gateway" });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e).toEqual({ kind: "http", status: 502, reason: "Bad Gateway", endpoint: ENDPOINT.webhook });
    expect(h.fake.requests().filter((x) => x.status === 502)).toHaveLength(3);
    expect(h.sleeps).toHaveLength(2);
  });

  it("retries network errors, then reports a network error naming the endpoint", async () => {
    let throws = 0;
    const h = createHarness({
      wrapFetch: (next) => async (input, init) => {
        if (String(input).includes("/centrepoint/")) {
          throws++;
          throw new TypeError("Network connection lost.");
        }
        return next(input, init);
      },
    });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e).toEqual({ kind: "network", reason: "TypeError: Network connection lost.", endpoint: ENDPOINT.webhook });
    expect(throws).toBe(4);
    expect(h.metrics.filter((m) => m.status === null)).toHaveLength(4);
  });

  it("aborts a request without an answer after timeoutMs, and clears the timer of one that answered", async () => {
    const timers = vi.spyOn(globalThis, "clearTimeout");
    const h = createHarness({
      client: { limits: { timeoutMs: 20, maxRetries: 0 } },
      wrapFetch: (next) => (input, init) =>
        String(input).includes("/centrepoint/")
          ? new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)))
          : next(input, init),
    });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e).toEqual({ kind: "network", reason: "TimeoutError: no answer within 20 ms", endpoint: ENDPOINT.webhook });
    // Two requests (token, then the call): each timer cleared once its request ended.
    expect(timers).toHaveBeenCalledTimes(2);
  });
});

describe("other errors", () => {
  it("answers a 4xx at once, keeping a text/plain reason", async () => {
    const h = createHarness();
    const e = errorOf(await getWebhookRegistration(h.api, 189, 99));
    expect(e).toEqual({ kind: "http", status: 404, reason: "Webhook 99 not found in study 189.", endpoint: ENDPOINT.webhook });
    expect(h.sleeps).toEqual([]);
  });

  it("keeps at most 200 characters of a long text/plain body", async () => {
    const h = createHarness();
    h.fake.failNext(1, { status: 400, body: `bad request ${"x".repeat(5000)}` });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e.kind === "http" && e.reason.length).toBe(200);
  });

  it("reads the message of a JSON error body", async () => {
    const h = createHarness();
    h.fake.failNext(1, { status: 409, contentType: "application/json", body: '{"message":"Study is archived","code":17}' });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e).toMatchObject({ kind: "http", status: 409, reason: "Study is archived" });
  });

  it("a wrong scope is a 403 http error", async () => {
    const h = createHarness();
    const e = errorOf(await h.api.get(apiPath(ENDPOINT.webhook, { studyId: 189, webhookId: 74 }), z.unknown(), { scope: "DataRetrieval" }));
    expect(e).toMatchObject({ kind: "http", status: 403 });
  });

  it("a schema mismatch is invalid_response naming the fields, not the body", async () => {
    const h = createHarness();
    h.fake.failNext(1, { status: 200, contentType: "application/json", body: '{"id":74,"studyId":"189","url":42,"isDisabled":"very-private-value"}' });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e.kind).toBe("invalid_response");
    expect(e.kind === "invalid_response" && e.reason).toBe("schema mismatch at url (invalid_type), isDisabled (invalid_type)");
    expect(JSON.stringify(e)).not.toContain("very-private-value");
  });

  it("a non-JSON success body is invalid_response", async () => {
    const h = createHarness();
    h.fake.failNext(1, { status: 200, body: "<html>maintenance</html>" });
    const e = errorOf(await getWebhookRegistration(h.api, 189, 74));
    expect(e).toEqual({ kind: "invalid_response", reason: "invalid JSON", endpoint: ENDPOINT.webhook });
  });
});

describe("secrets", () => {
  it("never shows the token or the client secret in results, errors or log lines", async () => {
    const lines: string[] = [];
    for (const method of ["log", "warn", "error", "info", "debug"] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    }
    const h = createHarness({
      wrapFetch: (next) => async (input, init) => {
        const res = await next(input, init);
        // An API that echoes the presented token in its error body.
        if (String(input).includes("/Subjects/2")) return new Response(`bad token ${new Headers(init?.headers).get("authorization")}`, { status: 400 });
        return res;
      },
    });
    const results: unknown[] = [];
    results.push(await getWebhookRegistration(h.api, 189, 74));
    results.push(await getSubject(h.api, 189, 1));
    results.push(await getSubject(h.api, 189, 2));
    h.fake.failNext(1, { status: 503 });
    results.push(await getWebhookRegistration(h.api, 189, 74));
    h.fake.failNext(2, { status: 401 });
    results.push(await getWebhookRegistration(h.api, 189, 74));
    h.fake.failNext(1, { status: 400, path: "/connect/token", body: `client_secret ${CLIENT.clientSecret} is wrong` });
    h.tokens.clear();
    const tokenError = await getWebhookRegistration(h.api, 189, 74);
    results.push(tokenError);
    expect(h.tokensSent.size).toBeGreaterThanOrEqual(2);
    expect(lines.length).toBeGreaterThan(0);
    const everything = JSON.stringify(results) + lines.join("\n") + JSON.stringify(h.metrics) + JSON.stringify(h.fake.requests());
    for (const secret of secretsOf(h)) expect(everything).not.toContain(secret);
    expect(tokenError).toMatchObject({ ok: false, error: { kind: "auth", reason: "client_secret [redacted] is wrong" } });
    expect(results[2]).toMatchObject({ ok: false, error: { kind: "http", status: 400, reason: "bad token Bearer [redacted]" } });
  });
});

describe("helpers", () => {
  it("apiPath encodes parameters and keeps the template as the endpoint", () => {
    expect(apiPath("/a/{studyId}/b/{id}", { studyId: 189, id: "x/../y" })).toEqual({ path: "/a/189/b/x%2F..%2Fy", endpoint: "/a/{studyId}/b/{id}" });
    expect(() => apiPath("/a/{missing}", {})).toThrow();
  });

  it("endpointOf drops the query and replaces ids", () => {
    expect(endpointOf("/centrepoint/v3/Studies/189/Webhooks/74/history?limit=5&sig=secret")).toBe("/centrepoint/v3/Studies/{id}/Webhooks/{id}/history");
    expect(endpointOf("/dataretrieval/v3/RawActivityRequests/a7da760f-7906-4cb7-964a-ab87f45ea962/datafiles")).toBe(
      "/dataretrieval/v3/RawActivityRequests/{id}/datafiles",
    );
  });

  it("reasonOf collapses whitespace and says so when empty", () => {
    expect(reasonOf("  Not\n\n Found ")).toBe("Not Found");
    expect(reasonOf("")).toBe("no reason given");
    expect(reasonOf('{"error":"invalid_scope"}')).toBe("invalid_scope");
  });

  it("clampLimit keeps limit in 1..100", () => {
    expect([clampLimit(0), clampLimit(-5), clampLimit(37.9), clampLimit(500), clampLimit(undefined), clampLimit(Number.NaN)]).toEqual([
      1, 1, 37, 100, 100, 100,
    ]);
  });

  it("describeApiError says what happened in plain words", () => {
    expect(describeApiError({ kind: "rate_limited", retryAfterMs: 1500, endpoint: "/x" })).toBe("CentrePoint's rate limit was reached (/x); try again in 2 s");
    expect(describeApiError({ kind: "auth", status: 400, reason: "invalid_client", endpoint: "/connect/token" })).toBe(
      "CentrePoint refused the API credentials (HTTP 400): invalid_client",
    );
    expect(describeApiError({ kind: "http", status: 404, reason: "Not Found", endpoint: "/y" })).toBe("CentrePoint answered HTTP 404 to /y: Not Found");
  });
});
