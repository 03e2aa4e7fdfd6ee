import { describe, expect, it } from "vitest";
import { err, ok, type Result } from "../../../../src/lib/result";
import { getRawActivityRequest, getWebhookRegistration } from "../../../../src/providers/centrepoint/api/endpoints";
import {
  clearTokenCache,
  createCredential,
  createTokenCache,
  isolateTokenCache,
  refreshMarginMs,
  tokenKey,
  type Credential,
} from "../../../../src/providers/centrepoint/api/token";
import { CLIENT, createHarness, T0 } from "./setup";

const KEY = tokenKey({ authUrl: "https://auth.fake.test", apiUrl: "https://api.fake.test", ...CLIENT, scope: "CentrePoint" });

describe("refreshMarginMs", () => {
  it("is 60 s for long-lived tokens and 10 % of the lifetime for short ones", () => {
    expect(refreshMarginMs(3_600_000)).toBe(60_000);
    expect(refreshMarginMs(300_000)).toBe(30_000);
  });
});

describe("tokenKey", () => {
  const client = { apiUrl: "https://api.a.test", clientSecret: "s" };

  it("ignores a trailing slash of the auth URL and the order of scopes", () => {
    expect(tokenKey({ ...client, authUrl: "https://a.test/", clientId: "c", scope: "DataRetrieval CentrePoint" })).toBe(
      tokenKey({ ...client, authUrl: "https://a.test", clientId: "c", scope: "CentrePoint  DataRetrieval" }),
    );
  });

  it("differs per client and per scope", () => {
    const base = { ...client, authUrl: "https://a.test", clientId: "c", scope: "CentrePoint" };
    expect(tokenKey({ ...base, clientId: "d" })).not.toBe(tokenKey(base));
    expect(tokenKey({ ...base, scope: "DataRetrieval" })).not.toBe(tokenKey(base));
  });
});

describe("createCredential", () => {
  it("keeps the token out of its JSON form and redacts it from text", () => {
    const c = createCredential("tok-abcdef-123", T0, 3600);
    expect(c.authorization()).toBe("Bearer tok-abcdef-123");
    expect(JSON.stringify({ c })).not.toContain("tok-abcdef-123");
    expect(c.redact("echo tok-abcdef-123!")).toBe("echo [redacted]!");
    expect(c.refreshAt).toBe(T0 + 3_540_000);
  });
});

describe("token cache", () => {
  it("caches a token and reuses it for later calls", async () => {
    const h = createHarness();
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true);
    h.clock.t += 60_000;
    expect((await getWebhookRegistration(h.api, 189, 74)).ok).toBe(true);
    expect(h.fake.tokenRequests()).toBe(1);
    expect(h.tokensSent.size).toBe(1);
  });

  it("refreshes shortly before expiry: 60 s before for a one-hour token", async () => {
    const h = createHarness({ fake: { tokenExpiresInS: 3600 } });
    await getWebhookRegistration(h.api, 189, 74);
    h.clock.t = T0 + 3_540_000 - 1;
    await getWebhookRegistration(h.api, 189, 74);
    expect(h.fake.tokenRequests()).toBe(1);
    h.clock.t = T0 + 3_540_000;
    await getWebhookRegistration(h.api, 189, 74);
    expect(h.fake.tokenRequests()).toBe(2);
    expect(h.tokensSent.size).toBe(2);
  });

  it("refreshes a short-lived token 10 % of its lifetime before expiry", async () => {
    const h = createHarness({ fake: { tokenExpiresInS: 300 } });
    await getWebhookRegistration(h.api, 189, 74);
    h.clock.t = T0 + 269_999;
    await getWebhookRegistration(h.api, 189, 74);
    expect(h.fake.tokenRequests()).toBe(1);
    h.clock.t = T0 + 270_000;
    await getWebhookRegistration(h.api, 189, 74);
    expect(h.fake.tokenRequests()).toBe(2);
  });

  it("keeps one token per scope", async () => {
    const h = createHarness();
    await getWebhookRegistration(h.api, 189, 74);
    await getRawActivityRequest(h.api, "4f1c2d3e-0000-4000-8000-000000000000");
    expect(h.fake.tokenRequests()).toBe(2);
    expect(h.tokens.size()).toBe(2);
  });

  it("sends a single token request for concurrent callers", async () => {
    const h = createHarness();
    const results = await Promise.all(Array.from({ length: 8 }, () => getWebhookRegistration(h.api, 189, 74)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(h.fake.tokenRequests()).toBe(1);
  });

  it("shares one issue() among concurrent acquirers and caches its result", async () => {
    const cache = createTokenCache();
    let calls = 0;
    let release!: (r: Result<Credential, string>) => void;
    const issue = () => {
      calls++;
      return new Promise<Result<Credential, string>>((resolve) => (release = resolve));
    };
    const a = cache.acquire(KEY, T0, issue);
    const b = cache.acquire(KEY, T0, issue);
    release(ok(createCredential("tok-shared-1", T0, 3600)));
    const [ra, rb] = await Promise.all([a, b]);
    expect(calls).toBe(1);
    expect(ra.ok && rb.ok && ra.value === rb.value).toBe(true);
    await cache.acquire(KEY, T0 + 1000, issue);
    expect(calls).toBe(1);
  });

  it("does not cache a failure: the next caller asks again", async () => {
    const cache = createTokenCache();
    let calls = 0;
    const failing = async () => {
      calls++;
      return err("down");
    };
    expect((await cache.acquire(KEY, T0, failing)).ok).toBe(false);
    expect((await cache.acquire(KEY, T0, failing)).ok).toBe(false);
    expect(calls).toBe(2);
    expect(cache.size()).toBe(0);
  });

  it("invalidate with a stale credential keeps a newer one", async () => {
    const cache = createTokenCache();
    const first = createCredential("tok-first-1", T0, 3600);
    const second = createCredential("tok-second-2", T0, 3600);
    await cache.acquire(KEY, T0, async () => ok(first));
    cache.invalidate(KEY);
    await cache.acquire(KEY, T0, async () => ok(second));
    cache.invalidate(KEY, first);
    const r = await cache.acquire(KEY, T0, async () => ok(createCredential("tok-third-3", T0, 3600)));
    expect(r.ok && r.value).toBe(second);
  });

  it("clearTokenCache empties the isolate's shared cache", async () => {
    await isolateTokenCache.acquire(KEY, T0, async () => ok(createCredential("tok-isolate-1", T0, 3600)));
    expect(isolateTokenCache.size()).toBe(1);
    clearTokenCache();
    expect(isolateTokenCache.size()).toBe(0);
  });
});
