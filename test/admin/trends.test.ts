import { describe, expect, it } from "vitest";
import { clockForEachTest, HOUR, T0 } from "../support/clock";
import { admin, freshId, putSource } from "../support/helpers";
import { fakeTarget, fireAlarm, makeItem, newTarget } from "../support/outbox";

/** GET /admin/trends: hourly activity of a source or a target (lib/trends.ts). */
const { advance } = clockForEachTest();

describe("GET /admin/trends", () => {
  it("answers a target's delivered dispatches, failed attempts and latency per hour, times as ISO 8601", async () => {
    const { id, stub } = await newTarget();
    let n = 0;
    fakeTarget(() => new Response(n++ === 0 ? "down" : "ok", { status: n === 1 ? 503 : 200 }));
    await stub.acceptHandoff(id, [makeItem({ receivedAt: Date.now() })]);
    await fireAlarm(stub); // the first attempt fails
    advance(HOUR);
    await fireAlarm(stub); // the retry succeeds exactly an hour after acceptance: the 1 h bucket
    const res = await admin(`/trends?target=${id}&hours=2`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { target: string; hours: number; points: Record<string, unknown>[] };
    expect(body).toMatchObject({ target: id, hours: 2 });
    expect(body.points).toEqual([
      { at: new Date(T0).toISOString(), delivered: 0, failedAttempts: 1, latencyP50Ms: null, latencyP99Ms: null },
      { at: new Date(T0 + HOUR).toISOString(), delivered: 1, failedAttempts: 0, latencyP50Ms: 3_600_000, latencyP99Ms: 3_600_000 },
    ]);
  });

  it("answers a source's deliveries per hour, zeros for a quiet source", async () => {
    const source = freshId();
    await putSource(source);
    const body = (await (await admin(`/trends?source=${source}`)).json()) as { hours: number; points: { deliveries: number }[] };
    expect(body.hours).toBe(24);
    expect(body.points).toHaveLength(24);
    expect(body.points.every((p) => p.deliveries === 0)).toBe(true);
  });

  it.each([
    ["neither source nor target", ""],
    ["both", "source=a&target=b"],
    ["hours 0", "source=a&hours=0"],
    ["hours past 90 days", "source=a&hours=2161"],
    ["an invalid id", "source=..%2F"],
  ])("refuses %s with a 400", async (_, query) => {
    const res = await admin(`/trends?${query}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "bad_request" });
  });

  it("answers 404 for an unknown source or target", async () => {
    expect((await admin(`/trends?source=${freshId()}`)).status).toBe(404);
    expect((await admin(`/trends?target=${freshId("t")}`)).status).toBe(404);
  });
});
