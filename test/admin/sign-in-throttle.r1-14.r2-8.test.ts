import { exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { ADMIN_TOKEN } from "../support/helpers";
import { clockForEachTest } from "../support/clock";

/** Review finding 14: dashboard sign-in had no rate limit. */

const ORIGIN = "http://relay.test";

const { advance } = clockForEachTest({ quiet: [] });

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
    advance(5 * 60_000 + 1_000);
    expect((await signIn(ADMIN_TOKEN, ip)).status).toBe(303);
  });

  it("does not count successful sign-ins", async () => {
    const ip = "198.51.100.24";
    for (let i = 0; i < 12; i++) expect((await signIn(ADMIN_TOKEN, ip)).status).toBe(303);
  });
});

/** Issue 16, item 8: attempts were counted after comparing, per exact address, and bearer guesses were never counted. */
describe("the admin token guard", () => {
  function bearer(token: string, ip: string, path = "/admin/sources") {
    return exports.default.fetch(`${ORIGIN}${path}`, { headers: { authorization: `Bearer ${token}`, "cf-connecting-ip": ip } });
  }
  const statuses = (responses: Response[]) => responses.map((r) => r.status).sort((a, b) => a - b);

  it("counts 20 parallel wrong sign-ins before comparing: 10 are compared (401), the other 10 get 429", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const ip = "198.51.100.31";
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => signIn(`wrong-${i}`, ip)));
    expect(statuses(answers)).toEqual([...Array<number>(10).fill(401), ...Array<number>(10).fill(429)]);
    expect((await signIn(ADMIN_TOKEN, ip)).status).toBe(429);
  });

  it("groups IPv6 addresses by /64", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    for (let i = 1; i <= 10; i++) expect((await signIn(`wrong-${i}`, `2001:db8:1:2::${i.toString(16)}`)).status).toBe(401);
    const limited = await signIn(ADMIN_TOKEN, "2001:db8:1:2:ffff:ffff:ffff:fffe");
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // The neighbouring /64 is another group.
    expect((await signIn(ADMIN_TOKEN, "2001:db8:1:3::1")).status).toBe(303);
  });

  it("limits bearer guessing on /admin/*: 10 wrong tokens, then 429 with Retry-After even for the right one; other addresses keep working", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const ip = "198.51.100.41";
    for (let i = 0; i < 10; i++) expect((await bearer(`guess-${i}`, ip, i % 2 ? "/admin/sources" : "/admin/ui/")).status).not.toBe(200);
    const limited = await bearer("guess-again", ip);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({ error: "rate_limited" });
    expect((await bearer(ADMIN_TOKEN, ip)).status).toBe(429);
    // The dashboard sign-in of that address goes through the same guard.
    expect((await signIn(ADMIN_TOKEN, ip)).status).toBe(429);
    expect((await bearer(ADMIN_TOKEN, "198.51.100.42")).status).toBe(200);
    advance(5 * 60_000 + 1_000);
    expect((await bearer(ADMIN_TOKEN, ip)).status).toBe(200);
  });

  it("counts parallel bearer guesses before comparing", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const ip = "198.51.100.43";
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => bearer(`guess-${i}`, ip)));
    expect(statuses(answers)).toEqual([...Array<number>(10).fill(401), ...Array<number>(10).fill(429)]);
  });

  it("does not count the right bearer token", async () => {
    const ip = "198.51.100.44";
    for (let i = 0; i < 15; i++) expect((await bearer(ADMIN_TOKEN, ip)).status).toBe(200);
    // A burst of right tokens in parallel is never taken for guesses.
    expect(statuses(await Promise.all(Array.from({ length: 20 }, () => bearer(ADMIN_TOKEN, ip))))).toEqual(Array<number>(20).fill(200));
  });
});
