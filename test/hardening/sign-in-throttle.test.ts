import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ADMIN_TOKEN } from "../helpers";
import { useClock } from "../outbox/fixtures";

/** Review finding 14: dashboard sign-in had no rate limit. */

const ORIGIN = "http://relay.test";

beforeEach(() => void useClock());
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function signIn(token: string, ip: string) {
  return exports.default.fetch(`${ORIGIN}/admin/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN, "cf-connecting-ip": ip },
    body: new URLSearchParams({ token, next: "/admin/" }),
    redirect: "manual",
  });
}

describe("dashboard sign-in", () => {
  it("allows 10 failed sign-ins per address in 5 minutes, then answers 429 with Retry-After, even to the right token", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const ip = "198.51.100.21";
    for (let i = 0; i < 10; i++) expect((await signIn(`wrong-${i}`, ip)).status).toBe(401);
    const limited = await signIn("wrong-again", ip);
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(300);
    expect((await signIn(ADMIN_TOKEN, ip)).status).toBe(429);
    // Another address is not affected.
    expect((await signIn(ADMIN_TOKEN, "198.51.100.22")).status).toBe(303);
  });

  it("lets the address try again once the window has passed", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const ip = "198.51.100.23";
    for (let i = 0; i < 10; i++) await signIn(`wrong-${i}`, ip);
    expect((await signIn(ADMIN_TOKEN, ip)).status).toBe(429);
    vi.setSystemTime(Date.now() + 5 * 60_000 + 1_000);
    expect((await signIn(ADMIN_TOKEN, ip)).status).toBe(303);
  });

  it("does not count successful sign-ins", async () => {
    const ip = "198.51.100.24";
    for (let i = 0; i < 12; i++) expect((await signIn(ADMIN_TOKEN, ip)).status).toBe(303);
  });
});
