import { describe, expect, it } from "vitest";
import { BREAKER_DEFAULTS, type BreakerState, breakerAllows, breakerFailure, breakerStatus, CLOSED_BREAKER } from "../../src/outbox/breaker";

const NOW = 1_000_000;

function failTimes(n: number, start: BreakerState = CLOSED_BREAKER): BreakerState {
  let b = start;
  for (let i = 0; i < n; i++) b = breakerFailure(b, NOW, false);
  return b;
}

describe("circuit breaker", () => {
  it("stays closed below the threshold", () => {
    const b = failTimes(BREAKER_DEFAULTS.threshold - 1);
    expect(breakerStatus(b, NOW)).toBe("closed");
    expect(breakerAllows(b, NOW)).toBe("all");
  });

  it("opens at the threshold and allows nothing during the cool-down", () => {
    const b = failTimes(BREAKER_DEFAULTS.threshold);
    expect(b.probeAt).toBe(NOW + 60_000);
    expect(breakerAllows(b, NOW + 59_999)).toBe("none");
  });

  it("allows one probe once the cool-down has passed", () => {
    const b = failTimes(BREAKER_DEFAULTS.threshold);
    expect(breakerStatus(b, NOW + 60_000)).toBe("half_open");
    expect(breakerAllows(b, NOW + 60_000)).toBe("probe");
  });

  it("stays open and doubles the cool-down when the probe fails", () => {
    const open = failTimes(BREAKER_DEFAULTS.threshold);
    const after = breakerFailure(open, NOW + 60_000, true);
    expect(after).toMatchObject({ probeAt: NOW + 60_000 + 120_000, cooldownMs: 120_000 });
  });

  it("caps the cool-down", () => {
    let b = failTimes(BREAKER_DEFAULTS.threshold);
    for (let i = 0; i < 20; i++) b = breakerFailure(b, NOW, true);
    expect(b.cooldownMs).toBe(BREAKER_DEFAULTS.maxCooldownMs);
  });

  it("does not move the probe time for failures of attempts sent before it opened", () => {
    const open = failTimes(BREAKER_DEFAULTS.threshold);
    expect(breakerFailure(open, NOW + 30_000, false)).toMatchObject({ probeAt: open.probeAt, cooldownMs: open.cooldownMs });
  });
});
