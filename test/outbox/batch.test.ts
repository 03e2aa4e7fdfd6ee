import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { targetSchema } from "../../src/config/schemas";
import { T0 } from "../support/clock";
import { alarmAt, fakeTarget, fireAlarm, makeItem, newTarget, sqlIn, outboxTestsWithCounters } from "../support/outbox";

const clock = outboxTestsWithCounters();

const ids = (body: string) => (JSON.parse(body) as { id: string }[]).map((e) => e.id);

describe("batch", () => {
  it("is validated: maxEvents 1-100, maxWaitMs 0-60000, cloudevents format only", () => {
    const parse = (doc: Record<string, unknown>) => targetSchema.safeParse({ url: "https://edc.example/hooks", ...doc }).success;
    expect(parse({ batch: { maxEvents: 100, maxWaitMs: 60_000 } })).toBe(true);
    expect(parse({ batch: { maxEvents: 101, maxWaitMs: 0 } })).toBe(false);
    expect(parse({ batch: { maxEvents: 10, maxWaitMs: 60_001 } })).toBe(false);
    expect(parse({ batch: { maxEvents: 10, maxWaitMs: 0 }, format: "raw" })).toBe(false);
  });

  it("sends full batches as one application/cloudevents-batch+json request each, in order", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ batch: { maxEvents: 10, maxWaitMs: 60_000 } });
    const items = Array.from({ length: 25 }, (_, i) => makeItem({ receivedAt: T0 + i }));
    await stub.acceptHandoff(id, items);
    await fireAlarm(stub);
    expect(target.sent.map((s) => s.headers["content-type"])).toEqual(["application/cloudevents-batch+json", "application/cloudevents-batch+json"]);
    expect(target.sent.flatMap((s) => ids(s.body))).toEqual(items.slice(0, 20).map((i) => i.deliveryId));
    // The 5 left wait for more, or for maxWaitMs after they became due.
    expect(await alarmAt(stub)).toBe(T0 + 60_000);
    clock.advance(60_000);
    await fireAlarm(stub);
    expect(target.sent.map((s) => ids(s.body).length)).toEqual([10, 10, 5]);
    expect((await stub.health()).counts.delivered).toBe(25);
  });

  it("retries a failing batch whole, then dead letters and replays per event", async () => {
    const target = fakeTarget(() => new Response("down", { status: 500 }));
    const { id, stub } = await newTarget({ batch: { maxEvents: 5, maxWaitMs: 0 }, retry: { maxAttempts: 2, baseDelayMs: 1_000 } });
    const items = Array.from({ length: 5 }, () => makeItem());
    await stub.acceptHandoff(id, items);
    await fireAlarm(stub);
    clock.advance(60_000);
    await fireAlarm(stub);
    expect(target.sent.map((s) => ids(s.body))).toEqual([items.map((i) => i.deliveryId), items.map((i) => i.deliveryId)]);
    expect((await stub.health()).counts.dead).toBe(5);
    expect((await stub.health()).breaker.consecutiveFailures).toBe(2); // one per batch, not per event
    target.answer(() => new Response("ok"));
    await stub.replay(items[3]!.source, items[3]!.deliveryId);
    await fireAlarm(stub);
    expect(ids(target.sent[2]!.body)).toEqual([items[3]!.deliveryId]);
    expect((await stub.getDispatch(items[3]!.source, items[3]!.deliveryId))?.dispatch.state).toBe("delivered");
  });

  it("gives a transform the batch's inputs", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ batch: { maxEvents: 3, maxWaitMs: 0 }, transform: { body: '{"n": $count(batch), "ids": batch.delivery.id}' } });
    const items = Array.from({ length: 3 }, () => makeItem());
    await stub.acceptHandoff(id, items);
    await fireAlarm(stub);
    expect(target.sent.map((s) => JSON.parse(s.body))).toEqual([{ n: 3, ids: items.map((i) => i.deliveryId) }]);
    expect(target.sent[0]!.headers["content-type"]).toBe("application/json");
  });

  it("a crash mid-batch loses nothing and resends the batch; after its 2xx nothing is sent again", async () => {
    const { id, stub } = await newTarget({ batch: { maxEvents: 4, maxWaitMs: 0 } });
    const items = Array.from({ length: 4 }, () => makeItem());
    await stub.acceptHandoff(id, items);
    // The instance dies while the batch's request is in flight: claimed rows stay delivering, attempts in_flight.
    await runInDurableObject(stub, (_, state) => {
      // As claim() leaves them (src/outbox/transitions.ts): the attempt in flight on each row, no counter changed.
      state.storage.sql.exec(
        "UPDATE dispatches SET state = 'delivering', attempt_count = 1, window_attempts = 1, attempt = json_object('n', 1, 'startedAt', ?, 'outcome', 'in_flight')",
        T0,
      );
    });
    const target = fakeTarget();
    await fireAlarm(stub); // a new instance recovers them and sends the batch again, whole
    expect(target.sent.map((s) => ids(s.body))).toEqual([items.map((i) => i.deliveryId)]);
    expect((await stub.health()).counts.delivered).toBe(4);
    await stub.acceptHandoff(id, []);
    clock.advance(3_600_000);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(1);
    expect(await sqlIn(stub, "SELECT COUNT(*) AS n FROM attempts WHERE outcome = 'interrupted'")).toEqual([{ n: 4 }]);
  });
});
