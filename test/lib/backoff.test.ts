import { describe, expect, it } from "vitest";
import { retrySchema } from "../../src/config/schemas";
import { backoffDelayMs, delayCapMs, expectedSchedule, parseRetryAfter, planRetry } from "../../src/lib/backoff";

const policy = retrySchema.parse({});
const NOW = Date.UTC(2030, 0, 1);

describe("delayCapMs", () => {
  it("doubles from the base delay", () => {
    expect([1, 2, 3, 4].map((n) => delayCapMs(policy, n))).toEqual([30_000, 60_000, 120_000, 240_000]);
  });

  it("is capped at maxDelayMs, even for huge attempt counts", () => {
    expect(delayCapMs(policy, 10)).toBe(4 * 3_600_000);
    expect(delayCapMs(policy, 5000)).toBe(4 * 3_600_000);
  });
});

describe("backoffDelayMs (full jitter)", () => {
  it("spans [0, cap): random 0 gives 0, random just under 1 gives just under the cap", () => {
    expect(backoffDelayMs(policy, 3, () => 0)).toBe(0);
    expect(backoffDelayMs(policy, 3, () => 0.999999)).toBe(119_999);
  });

  it("scales the cap by random", () => {
    expect(backoffDelayMs(policy, 2, () => 0.25)).toBe(15_000);
  });
});

describe("parseRetryAfter", () => {
  it("reads delta seconds", () => {
    expect(parseRetryAfter("120", NOW)).toBe(120_000);
  });

  it("reads an HTTP-date relative to now", () => {
    expect(parseRetryAfter(new Date(NOW + 90_000).toUTCString(), NOW)).toBe(90_000);
  });

  it("never returns a negative delay for a date in the past", () => {
    expect(parseRetryAfter(new Date(NOW - 90_000).toUTCString(), NOW)).toBe(0);
  });

  it("returns null when absent or malformed", () => {
    expect(parseRetryAfter(null, NOW)).toBeNull();
    expect(parseRetryAfter("", NOW)).toBeNull();
    expect(parseRetryAfter("-5", NOW)).toBeNull();
    expect(parseRetryAfter("soon", NOW)).toBeNull();
  });
});

describe("planRetry", () => {
  const fresh = { firstPlannedAt: NOW, windowAttempts: 1 };

  it("schedules the next attempt with jittered backoff", () => {
    expect(planRetry(policy, fresh, NOW, null, () => 0.5)).toEqual({ kind: "retry", at: NOW + 15_000 });
  });

  it("uses Retry-After instead of the backoff", () => {
    expect(planRetry(policy, fresh, NOW, 600_000, () => 0.5)).toEqual({ kind: "retry", at: NOW + 600_000 });
  });

  it("caps Retry-After at retryAfterCapMs", () => {
    expect(planRetry(policy, fresh, NOW, 86_400_000, () => 0.5)).toEqual({ kind: "retry", at: NOW + policy.retryAfterCapMs });
  });

  it("is dead when the next attempt would fall after the window", () => {
    const old = { firstPlannedAt: NOW - policy.windowMs + 1000, windowAttempts: 30 };
    expect(planRetry(policy, old, NOW, null, () => 0.5)).toEqual({ kind: "dead" });
  });

  it("is not dead when the next attempt is exactly at the end of the window", () => {
    const old = { firstPlannedAt: NOW - policy.windowMs + 15_000, windowAttempts: 1 };
    expect(planRetry(policy, old, NOW, null, () => 0.5)).toEqual({ kind: "retry", at: NOW + 15_000 });
  });

  it("is dead once maxAttempts is reached, whatever the window", () => {
    expect(planRetry({ ...policy, maxAttempts: 3 }, { firstPlannedAt: NOW, windowAttempts: 3 }, NOW, null, () => 0)).toEqual({ kind: "dead" });
    expect(planRetry({ ...policy, maxAttempts: 3 }, { firstPlannedAt: NOW, windowAttempts: 2 }, NOW, null, () => 0).kind).toBe("retry");
  });
});

describe("expectedSchedule", () => {
  const rows = expectedSchedule(policy);

  it("starts with an immediate first attempt", () => {
    expect(rows[0]).toEqual({ attempt: 1, delayCapMs: 0, expectedAtMs: 0 });
  });

  it("keeps every expected attempt inside the default 72 h window and covers most of it", () => {
    const last = rows[rows.length - 1]!;
    expect(last.expectedAtMs).toBeLessThanOrEqual(policy.windowMs);
    expect(last.expectedAtMs).toBeGreaterThan(policy.windowMs - policy.maxDelayMs);
  });

  it("stops at maxAttempts", () => {
    expect(expectedSchedule({ ...policy, maxAttempts: 4 })).toHaveLength(4);
  });
});
