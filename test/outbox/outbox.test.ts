import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { trailOf } from "../../src/audit/audit";
import { clearConfigCache } from "../../src/config/store";
import { COUNTER_SET_MIGRATION } from "../../src/lib/counters";
import { IN_ROW } from "../../src/outbox/transitions";
import { HOLD_RECHECK_MS } from "../../src/outbox/schedule";
import { LATENCY_BUCKETS_S } from "../../src/outbox/views";
import { putTarget } from "../support/helpers";
import { T0, useClock } from "../support/clock";
import { alarmAt, fakeTarget, fireAlarm, makeItem, newTarget, SIGNING_SECRET, sqlIn, expectCountersMatchRows } from "../support/outbox";

let clock: ReturnType<typeof useClock>;

beforeEach(() => {
  clock = useClock();
  clearConfigCache();
  vi.spyOn(Math, "random").mockReturnValue(0.5); // full jitter → exactly half of each cap
});

afterEach(async () => {
  await expectCountersMatchRows();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const DAY = 86_400_000;
const HOUR = 3_600_000;

const fail =
  (status: number, headers: Record<string, string> = {}) =>
  () =>
    new Response("nope", { status, headers });

describe("enqueue", () => {
  it("is idempotent on (source, deliveryId)", async () => {
    const { id, stub } = await newTarget();
    const items = [makeItem(), makeItem()];
    expect(await stub.acceptHandoff(id, items)).toEqual({ inserted: 2, duplicates: 0 });
    expect(await stub.acceptHandoff(id, [...items, makeItem()])).toEqual({ inserted: 1, duplicates: 2 });
  });

  it("arms the alarm for the new rows", async () => {
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [makeItem()]);
    expect(await alarmAt(stub)).toBe(T0);
  });

  it("refuses items meant for another target", async () => {
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [makeItem()]);
    // Called inside the object: a rejected RPC call would also surface as an unhandled error in the pool.
    await runInDurableObject(stub, (outbox) => expect(outbox.acceptHandoff("another-target", [makeItem()])).rejects.toThrow(/another-target/));
  });
});

describe("sending", () => {
  it("delivers a due event and records one successful attempt", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget();
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    const got = await stub.getDispatch(item.source, item.deliveryId);
    expect(got?.dispatch).toMatchObject({ state: "delivered", deliveredAt: T0, windowAttempts: 1 });
    expect(got?.attempts).toEqual([expect.objectContaining({ n: 1, outcome: "success", status: 200, responseBody: "ok" })]);
    expect(target.sent).toHaveLength(1);
  });

  it("logs a batch's successes in one line with their ids, and each failure in its own", async () => {
    fakeTarget((req) => new Response("", { status: req.headers["webhook-id"] === "bad" ? 503 : 200 }));
    const { id, stub } = await newTarget();
    const lines: Record<string, unknown>[] = [];
    for (const level of ["log", "warn"] as const) vi.spyOn(console, level).mockImplementation((l: unknown) => void lines.push(JSON.parse(String(l))));
    const ids = ["a", "b", "c", "bad", "d"];
    await stub.acceptHandoff(
      id,
      ids.map((deliveryId) => makeItem({ deliveryId })),
    );
    await fireAlarm(stub);
    const delivered = lines.filter((l) => l.msg === "dispatches delivered");
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ level: "info", target: id, count: 4, statuses: { "200": 4 }, sources: ["study-189"] });
    expect((delivered[0]!.deliveryIds as string[]).sort()).toEqual(["a", "b", "c", "d"]);
    expect(lines.filter((l) => l.msg === "dispatch attempt")).toEqual([
      expect.objectContaining({ level: "warn", target: id, deliveryId: "bad", outcome: "failure", status: 503 }),
    ]);
  });

  it("keeps at most the target's concurrency of attempts in flight", async () => {
    let inFlight = 0;
    let peak = 0;
    const target = fakeTarget(async () => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return new Response("ok");
    });
    const { id, stub } = await newTarget({ concurrency: 3 });
    await stub.acceptHandoff(
      id,
      Array.from({ length: 12 }, () => makeItem()),
    );
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(12);
    expect(peak).toBe(3);
  });

  it("does not send a delivered event again when the alarm runs twice", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    await stub.acceptHandoff(id, []); // arms the alarm again, nothing new
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(1);
  });

  it("POSTs the envelope to the target URL with webhook-id and a signature a Standard Webhooks receiver accepts", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ signing: { secretEnv: "TEST_SIGNING_SECRET" }, auth: { type: "bearer", tokenEnv: "TEST_TARGET_TOKEN" } });
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    const [sent] = target.sent;
    expect(sent).toMatchObject({ url: "https://edc.example/hooks", body: item.envelope });
    expect(sent?.headers).toMatchObject({ "webhook-id": item.deliveryId, authorization: "Bearer test-target-token" });
    expect(() => new Webhook(SIGNING_SECRET).verify(sent!.body, sent!.headers)).not.toThrow();
  });

  it("arms nothing but the retention prune when nothing is left to send", async () => {
    fakeTarget();
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    expect(await alarmAt(stub)).toBe(T0 + 30 * DAY);
  });

  it("claims batches of max(50, 8 × concurrency) and keeps taking them in one alarm run while rows are due", async () => {
    let inFlight = 0;
    let most = 0;
    const claimed: number[] = [];
    vi.spyOn(console, "log").mockImplementation(() => undefined); // a delivered line per batch
    const { id, stub } = await newTarget({ concurrency: 2 });
    // While a fetch is out, the rows in `delivering` are the claimed batch (its claim is committed before the fetches).
    const sql = await runInDurableObject(stub, (_i, state) => state.storage.sql); // the fetch runs in the object's own isolate
    const target = fakeTarget(async () => {
      most = Math.max(most, ++inFlight);
      claimed.push(sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM dispatches WHERE state = 'delivering'").one().n);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      return new Response("ok");
    });
    await stub.acceptHandoff(
      id,
      Array.from({ length: 120 }, () => makeItem()),
    );
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(120);
    expect(most).toBeLessThanOrEqual(2);
    // Batches of 50, 50 and 20 (completions are written together after each batch's fetches).
    expect(claimed).toEqual([...Array<number>(100).fill(50), ...Array<number>(20).fill(20)]);
    expect(await alarmAt(stub)).toBe(T0 + 30 * DAY); // only the retention prune of what it delivered
  });
});

describe("large batches", () => {
  it("claims and sends a batch larger than SQLite's 100 bound parameters", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ concurrency: 50 }); // batches of 200
    await stub.acceptHandoff(
      id,
      Array.from({ length: 210 }, () => makeItem()),
    );
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(210);
    expect((await stub.health()).counts.delivered).toBe(210);
  });
});

describe("retries", () => {
  it("reschedules a failed attempt with jittered backoff and records the answer", async () => {
    fakeTarget(fail(500));
    const { id, stub } = await newTarget();
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    const got = await stub.getDispatch(item.source, item.deliveryId);
    expect(got?.dispatch).toMatchObject({ state: "pending", nextAt: T0 + 15_000, lastError: "HTTP 500" });
    expect(got?.attempts[0]).toMatchObject({ outcome: "failure", status: 500, errorClass: "http", responseBody: "nope" });
  });

  it("re-arms the alarm at the retry time", async () => {
    fakeTarget(fail(500));
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    expect(await alarmAt(stub)).toBe(T0 + 15_000);
  });

  it("does not send before the retry is due", async () => {
    const target = fakeTarget(fail(500));
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    clock.advance(14_999);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(1);
  });

  it("retries when due with the same webhook-id and a new timestamp, then delivers", async () => {
    const target = fakeTarget((_, n) => (n === 1 ? new Response("", { status: 502 }) : new Response("ok")));
    const { id, stub } = await newTarget();
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    clock.advance(15_000);
    await fireAlarm(stub);
    expect((await stub.getDispatch(item.source, item.deliveryId))?.dispatch.state).toBe("delivered");
    expect(target.sent.map((s) => s.headers["webhook-id"])).toEqual([item.deliveryId, item.deliveryId]);
    expect(Number(target.sent[1]!.headers["webhook-timestamp"]) - Number(target.sent[0]!.headers["webhook-timestamp"])).toBe(15);
  });

  it("honours Retry-After on 429", async () => {
    fakeTarget(fail(429, { "retry-after": "120" }));
    const { id, stub } = await newTarget();
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    expect((await stub.getDispatch(item.source, item.deliveryId))?.dispatch.nextAt).toBe(T0 + 120_000);
  });

  it("honours an HTTP-date Retry-After on 503, capped at retryAfterCapMs", async () => {
    fakeTarget(fail(503, { "retry-after": new Date(T0 + 86_400_000).toUTCString() }));
    const { id, stub } = await newTarget({ retry: { retryAfterCapMs: 60_000 } });
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    expect((await stub.getDispatch(item.source, item.deliveryId))?.dispatch.nextAt).toBe(T0 + 60_000);
  });

  it("records a timeout with its error class and retries it", async () => {
    fakeTarget(() => Promise.reject(new DOMException("The operation was aborted due to timeout", "TimeoutError")));
    const { id, stub } = await newTarget({ timeoutMs: 5000 });
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    const got = await stub.getDispatch(item.source, item.deliveryId);
    expect(got?.attempts[0]).toMatchObject({ outcome: "failure", status: null, errorClass: "timeout", error: "no response within 5000 ms" });
    expect(got?.dispatch.state).toBe("pending");
  });

  it("records a connection failure with its error class", async () => {
    fakeTarget(() => Promise.reject(new Error("connection refused")));
    const { id, stub } = await newTarget();
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    expect((await stub.getDispatch(item.source, item.deliveryId))?.attempts[0]).toMatchObject({ errorClass: "connect", error: "connection refused" });
  });

  it("marks a delivery dead when the next attempt would fall after the window", async () => {
    fakeTarget(fail(500));
    const { id, stub } = await newTarget({ retry: { windowMs: 60_000 } });
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub); // next at T0 + 15 s
    clock.advance(50_000);
    await fireAlarm(stub); // next would be T0 + 50 s + 30 s > T0 + 60 s
    expect((await stub.getDispatch(item.source, item.deliveryId))?.dispatch).toMatchObject({ state: "dead", nextAt: null, windowAttempts: 2 });
  });

  it("marks a delivery dead after maxAttempts", async () => {
    fakeTarget(fail(500));
    vi.mocked(Math.random).mockReturnValue(0);
    const { id, stub } = await newTarget({ retry: { maxAttempts: 2 } });
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    await fireAlarm(stub);
    expect((await stub.getDispatch(item.source, item.deliveryId))?.dispatch.state).toBe("dead");
  });
});

describe("410 Gone", () => {
  async function gone() {
    const target = fakeTarget(fail(410));
    const t = await newTarget();
    const item = makeItem();
    await t.stub.acceptHandoff(t.id, [item]);
    await fireAlarm(t.stub);
    return { ...t, item, target };
  }

  it("leaves the target document in KV untouched: the pause lives in the outbox alone", async () => {
    const { id } = await gone();
    expect(JSON.parse((await env.CONFIG.get(`target:${id}`))!)).toEqual({ url: "https://edc.example/hooks" });
  });

  it("holds the delivery and reports the pause in health", async () => {
    const { stub, item } = await gone();
    expect((await stub.getDispatch(item.source, item.deliveryId))?.dispatch.state).toBe("held");
    expect(await stub.health()).toMatchObject({ heldBy: "gone", heldReason: expect.stringContaining("410") });
  });

  it("holds events enqueued while paused without sending them", async () => {
    const { id, stub, target } = await gone();
    const later = makeItem();
    await stub.acceptHandoff(id, [later]);
    await fireAlarm(stub);
    expect((await stub.getDispatch(later.source, later.deliveryId))?.dispatch.state).toBe("held");
    expect(target.sent).toHaveLength(1);
  });

  it("stays paused when the document is re-enabled in KV, until resume() is called", async () => {
    const { id, stub, target } = await gone();
    await putTarget(id, { url: "https://edc.example/hooks", enabled: true });
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(1);
  });

  it("resume() sends the held events", async () => {
    const { id, stub, item, target } = await gone();
    target.answer(() => new Response("ok"));
    await putTarget(id, { url: "https://edc.example/hooks", enabled: true });
    expect(await stub.resume()).toEqual({ resumed: 1 });
    await fireAlarm(stub);
    expect((await stub.getDispatch(item.source, item.deliveryId))?.dispatch).toMatchObject({ state: "delivered", windowAttempts: 1 });
  });
});

describe("configuration problems", () => {
  it("holds, never drops, the deliveries of a target whose document is missing", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget();
    await env.CONFIG.delete(`target:${id}`);
    clearConfigCache();
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    expect((await stub.getDispatch(item.source, item.deliveryId))?.dispatch).toMatchObject({
      state: "held",
      lastError: `target document target:${id} is missing`,
    });
    expect(target.sent).toHaveLength(0);
  });

  it("holds the deliveries of a target whose document is invalid, naming the problem", async () => {
    fakeTarget();
    const { id, stub } = await newTarget();
    await env.CONFIG.put(`target:${id}`, JSON.stringify({ url: "https://edc.example/hooks", timeoutMs: 5 }));
    clearConfigCache();
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    expect(await stub.health()).toMatchObject({ heldBy: "config", heldReason: expect.stringContaining("timeoutMs") });
  });

  it("holds the deliveries of a disabled target and re-checks later", async () => {
    fakeTarget();
    const { id, stub } = await newTarget({ enabled: false });
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    expect(await stub.health()).toMatchObject({ heldBy: "config", heldReason: "target is disabled", counts: { held: 1 } });
    expect(await alarmAt(stub)).toBe(T0 + HOLD_RECHECK_MS);
  });

  it("resumes by itself once the target is re-enabled in KV", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ enabled: false });
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    await putTarget(id, { url: "https://edc.example/hooks", enabled: true });
    clock.advance(HOLD_RECHECK_MS);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(1);
  });

  it("never sends without its auth secret: records a config attempt and holds", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ auth: { type: "bearer", tokenEnv: "EDC_TOKEN_NOT_SET" } });
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    const got = await stub.getDispatch(item.source, item.deliveryId);
    expect(target.sent).toHaveLength(0);
    expect(got?.dispatch.state).toBe("held");
    expect(got?.attempts).toEqual([
      expect.objectContaining({ outcome: "failure", errorClass: "config", error: "secret EDC_TOKEN_NOT_SET (outbound bearer auth) is not set" }),
    ]);
  });

  it("holds a target whose URL breaks the URL policy", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ url: "http://edc.example/hooks" });
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(0);
    expect((await stub.health()).heldReason).toContain("loopback");
  });
});

describe("circuit breaker", () => {
  /** Five deliveries fail at T0 (retries due at once: random 0) and open the breaker. */
  async function openBreaker() {
    vi.mocked(Math.random).mockReturnValue(0);
    const target = fakeTarget(fail(500));
    const t = await newTarget();
    await t.stub.acceptHandoff(
      t.id,
      Array.from({ length: 5 }, () => makeItem()),
    );
    await fireAlarm(t.stub);
    return { ...t, target };
  }

  it("opens after 5 consecutive failures and stops sending", async () => {
    const { stub, target } = await openBreaker();
    clock.advance(1000);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(5);
    expect((await stub.health()).breaker).toEqual({ status: "open", consecutiveFailures: 5, probeAt: T0 + 60_000 });
  });

  it("takes its threshold and cool-down from the target document", async () => {
    vi.mocked(Math.random).mockReturnValue(0);
    const target = fakeTarget(fail(500));
    const { id, stub } = await newTarget({ breaker: { threshold: 2, cooldownMs: 5_000 } });
    await stub.acceptHandoff(
      id,
      Array.from({ length: 3 }, () => makeItem()),
    );
    await fireAlarm(stub);
    clock.advance(1000);
    await fireAlarm(stub);
    expect((await stub.health()).breaker).toEqual({ status: "open", consecutiveFailures: 3, probeAt: T0 + 5_000 });
    expect(target.sent).toHaveLength(3);
  });

  it("re-arms the alarm for the probe time while open", async () => {
    const { stub } = await openBreaker();
    expect(await alarmAt(stub)).toBe(T0 + 60_000);
  });

  it("sends a single probe after the cool-down", async () => {
    const { stub, target } = await openBreaker();
    clock.advance(60_000);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(6);
  });

  it("closes on a successful probe and lets the rest flow", async () => {
    const { stub, target } = await openBreaker();
    target.answer(() => new Response("ok"));
    clock.advance(60_000);
    await fireAlarm(stub);
    expect((await stub.health()).breaker.status).toBe("closed");
    await fireAlarm(stub);
    expect((await stub.health()).counts.delivered).toBe(5);
  });

  it("does not wake for new dispatches while open: they wait for the probe time", async () => {
    const { id, stub, target } = await openBreaker();
    clock.advance(1000);
    await stub.acceptHandoff(id, [makeItem()]);
    // Woken now, the alarm would load the config and find nothing it may send, once per event.
    expect(await alarmAt(stub)).toBe(T0 + 60_000);
    clock.advance(59_000);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(6);
  });

  it("arms the probe time for dispatches enqueued while open with nothing else waiting", async () => {
    vi.mocked(Math.random).mockReturnValue(0);
    const target = fakeTarget(fail(500));
    // Retries far off (no retry before the window ends), so once open no row is due and no alarm is set by the rows.
    const { id, stub } = await newTarget({ retry: { maxAttempts: 1 } });
    await stub.acceptHandoff(
      id,
      Array.from({ length: 5 }, () => makeItem()),
    );
    await fireAlarm(stub);
    expect((await stub.health()).breaker.status).toBe("open");
    expect((await stub.health()).counts.dead).toBe(5);
    await stub.acceptHandoff(id, [makeItem()]);
    expect(await alarmAt(stub)).toBe(T0 + 60_000);
    target.answer(() => new Response("ok"));
    clock.advance(60_000);
    await fireAlarm(stub);
    expect((await stub.health()).counts.delivered).toBe(1);
  });

  it("stops a batch once it opens: the rows not sent yet go back unsent, for the probe", async () => {
    vi.mocked(Math.random).mockReturnValue(0);
    const target = fakeTarget(fail(500));
    const { id, stub } = await newTarget({ concurrency: 1 });
    await stub.acceptHandoff(
      id,
      Array.from({ length: 12 }, () => makeItem()),
    );
    await fireAlarm(stub);
    // Five failures open it; the other seven rows of the batch are not sent to a target that is down.
    expect(target.sent).toHaveLength(5);
    const health = await stub.health();
    expect(health.breaker).toMatchObject({ status: "open", consecutiveFailures: 5, probeAt: T0 + 60_000 });
    expect(health.counts.pending).toBe(12);
    expect(health.counts.delivering).toBe(0);
    expect(await alarmAt(stub)).toBe(T0 + 60_000);
    // Unsent rows have no attempt: their window is not charged.
    const unsent = (await stub.list({ state: "pending", limit: 100 })).items.filter((d) => d.windowAttempts === 0);
    expect(unsent).toHaveLength(7);
    target.answer(() => new Response("ok"));
    clock.advance(60_000);
    await fireAlarm(stub);
    await fireAlarm(stub);
    expect((await stub.health()).counts.delivered).toBe(12);
  });

  it("stays open with a doubled cool-down when the probe fails", async () => {
    const { stub } = await openBreaker();
    clock.advance(60_000);
    await fireAlarm(stub);
    expect((await stub.health()).breaker).toMatchObject({ status: "open", probeAt: T0 + 60_000 + 120_000 });
  });
});

describe("ordered targets", () => {
  const A = "studies/189/subjects/44732";
  const B = "studies/189/subjects/44733";
  const item = (subject: string | null, n: number) => makeItem({ subject, receivedAt: T0 - 1000 + n, deliveryId: `${subject ?? "none"}#${n}` });

  it("sends only the oldest event of a subject while other subjects flow, the next one after it is delivered", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ ordered: true });
    await stub.acceptHandoff(id, [item(A, 2), item(A, 1), item(B, 3)]);
    await fireAlarm(stub);
    // A batch takes the head of each lane; A#2 goes in a later batch, once A#1 is delivered. Lanes are independent.
    const inOrder = target.sent.map((s) => s.headers["webhook-id"]!);
    expect(inOrder.filter((s) => s.startsWith(A))).toEqual([`${A}#1`, `${A}#2`]);
    expect(inOrder).toContain(`${B}#3`);
  });

  it("sends the next event of a subject once the head is delivered", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ ordered: true });
    await stub.acceptHandoff(id, [item(A, 1), item(A, 2)]);
    await fireAlarm(stub);
    await fireAlarm(stub);
    expect(target.sent.map((s) => s.headers["webhook-id"])).toEqual([`${A}#1`, `${A}#2`]);
  });

  it("keeps the rest of a subject waiting while its head backs off", async () => {
    const target = fakeTarget(fail(500));
    const { id, stub } = await newTarget({ ordered: true });
    await stub.acceptHandoff(id, [item(A, 1), item(A, 2)]);
    await fireAlarm(stub);
    expect(await alarmAt(stub)).toBe(T0 + 15_000); // not T0: the waiting event is not due on its own
    clock.advance(15_000);
    await fireAlarm(stub);
    expect(target.sent.map((s) => s.headers["webhook-id"])).toEqual([`${A}#1`, `${A}#1`]);
  });

  it("lets the next event go once the head is dead", async () => {
    const target = fakeTarget((req) => (req.headers["webhook-id"] === `${A}#1` ? new Response("", { status: 500 }) : new Response("ok")));
    const { id, stub } = await newTarget({ ordered: true, retry: { maxAttempts: 1 } });
    await stub.acceptHandoff(id, [item(A, 1), item(A, 2)]);
    await fireAlarm(stub);
    await fireAlarm(stub);
    expect(target.sent.map((s) => s.headers["webhook-id"])).toEqual([`${A}#1`, `${A}#2`]);
  });

  it("gives events without a subject a lane each", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget({ ordered: true });
    await stub.acceptHandoff(id, [item(null, 1), item(null, 2)]);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(2);
  });

  it("does not order the events of an unordered target", async () => {
    const target = fakeTarget();
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [item(A, 1), item(A, 2)]);
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(2);
  });
});

describe("replay", () => {
  /** A target whose deliveries all die on their first attempt; then it recovers. */
  async function withDead(n: number) {
    const target = fakeTarget(fail(500));
    const t = await newTarget({ retry: { maxAttempts: 1 } });
    const items = Array.from({ length: n }, (_, i) => makeItem({ receivedAt: T0 - 10_000 + i }));
    await t.stub.acceptHandoff(t.id, items);
    await fireAlarm(t.stub);
    target.answer(() => new Response("ok"));
    return { ...t, items, target };
  }

  it("sends a dead delivery again with a fresh window, the same webhook-id and its history kept", async () => {
    const { stub, items, target } = await withDead(1);
    const item = items[0]!;
    clock.advance(3_600_000);
    expect(await stub.replay(item.source, item.deliveryId)).toEqual({ found: true, replayed: true });
    await fireAlarm(stub);
    const got = await stub.getDispatch(item.source, item.deliveryId);
    expect(got?.dispatch).toMatchObject({ state: "delivered", firstPlannedAt: T0 + 3_600_000, windowAttempts: 1 });
    expect(got?.attempts.map((a) => a.outcome)).toEqual(["failure", "success"]);
    expect(target.sent.map((s) => s.headers["webhook-id"])).toEqual([item.deliveryId, item.deliveryId]);
  });

  it("leaves a pending delivery alone", async () => {
    const { id, stub } = await newTarget();
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    expect(await stub.replay(item.source, item.deliveryId)).toEqual({ found: true, replayed: false });
  });

  it("reports a delivery the target never had", async () => {
    const { stub } = await newTarget();
    expect(await stub.replay("study-189", "no-such-delivery")).toEqual({ found: false, replayed: false });
  });

  it("replays by filter, bounded by the limit, and reports what remains", async () => {
    const { stub } = await withDead(3);
    expect(await stub.replayWhere({ state: "dead", limit: 2 })).toEqual({ replayed: 2, remaining: 1 });
  });

  it("is idempotent: the same bulk replay again finds nothing to replay", async () => {
    const { stub } = await withDead(3);
    await stub.replayWhere({ state: "dead", limit: 10 });
    expect(await stub.replayWhere({ state: "dead", limit: 10 })).toEqual({ replayed: 0, remaining: 0 });
  });

  it("filters bulk replay by received time", async () => {
    const { stub, items } = await withDead(3);
    expect(await stub.replayWhere({ state: "dead", from: items[1]!.receivedAt, limit: 10 })).toEqual({ replayed: 2, remaining: 0 });
  });
});

describe("list and health", () => {
  it("pages dead letters newest first with a cursor", async () => {
    fakeTarget(fail(500));
    const { id, stub } = await newTarget({ retry: { maxAttempts: 1 } });
    const items = [makeItem(), makeItem(), makeItem()];
    await stub.acceptHandoff(id, items);
    await fireAlarm(stub);
    const first = await stub.list({ state: "dead", limit: 2 });
    const second = await stub.list({ state: "dead", limit: 2, cursor: first.cursor! });
    expect([...first.items, ...second.items].map((d) => d.deliveryId)).toEqual(items.map((i) => i.deliveryId).reverse());
    expect(second.cursor).toBeNull();
  });

  it("reports the backlog, the last error and the last success", async () => {
    fakeTarget((req) => (req.headers["webhook-id"] === "bad" ? new Response("", { status: 500 }) : new Response("ok")));
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [makeItem({ deliveryId: "good" })]);
    await fireAlarm(stub);
    await stub.acceptHandoff(id, [makeItem({ deliveryId: "bad" })]);
    await fireAlarm(stub);
    clock.advance(5000);
    expect(await stub.health()).toEqual({
      targetId: id,
      counts: { pending: 1, delivering: 0, delivered: 1, dead: 0, not_wanted: 0, held: 0 },
      oldestPendingAgeMs: 5000,
      heldBy: null,
      heldReason: null,
      breaker: { status: "closed", consecutiveFailures: 1, probeAt: null },
      lastError: { at: T0, message: "HTTP 500" },
      lastSuccessAt: T0,
      retention: { days: 30, prunedDispatches: 0, prunedAttempts: 0, lastPrunedAt: null },
    });
  });
});

describe("robustness", () => {
  it("records a row that cannot be built as a failed attempt instead of throwing", async () => {
    fakeTarget();
    const { id, stub } = await newTarget();
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await sqlIn(stub, "UPDATE dispatches SET headers = 'not json'");
    await fireAlarm(stub);
    const got = await stub.getDispatch(item.source, item.deliveryId);
    expect(got?.dispatch.state).toBe("pending");
    expect(got?.attempts[0]).toMatchObject({ outcome: "failure", errorClass: "config", error: expect.stringContaining("could not build the request") });
  });
});

describe("counters", () => {
  it("observe each delivery's accept-to-delivered latency in its histogram bucket", async () => {
    fakeTarget();
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [makeItem()]);
    clock.advance(2_000);
    await fireAlarm(stub);
    const { latency } = await stub.metrics();
    expect(latency.sumSeconds).toBe(2);
    expect(latency.counts.map((n, i) => (n ? i : -1)).filter((i) => i >= 0)).toEqual([LATENCY_BUCKETS_S.indexOf(2.5)]);
  });

  it("are filled from the rows by their migration, for outboxes that had data before", async () => {
    fakeTarget((req) => (req.headers["webhook-id"] === "bad" ? new Response("", { status: 500 }) : new Response("ok")));
    const { id, stub } = await newTarget({ retry: { maxAttempts: 1 } });
    await stub.acceptHandoff(id, [makeItem({ deliveryId: "good" }), makeItem({ deliveryId: "bad" })]);
    clock.advance(300);
    await fireAlarm(stub);
    const before = { health: await stub.health(), metrics: await stub.metrics() };
    expect(before.health.counts).toMatchObject({ delivered: 1, dead: 1 });
    const { OUTBOX_MIGRATIONS } = await import("../../src/outbox/schema");
    await runInDurableObject(stub, (_i, state) => {
      // Back to before the counters existed, through the migration that filled them, then forward to the one-row form.
      // Data as versions before the in-row attempt wrote it: every attempt an attempts row.
      state.storage.sql.exec(
        `INSERT INTO attempts (seq, n, started_at, duration_ms, status, response_headers, response_body, outcome)
         SELECT seq, ${IN_ROW.n}, ${IN_ROW.startedAt}, ${IN_ROW.durationMs}, ${IN_ROW.status}, ${IN_ROW.responseHeaders}, ${IN_ROW.responseBody}, ${IN_ROW.outcome}
         FROM dispatches WHERE attempt IS NOT NULL`,
      );
      state.storage.sql.exec("UPDATE dispatches SET attempt = NULL");
      state.storage.sql.exec("DROP VIEW counters; DROP TABLE counter_set");
      state.storage.sql.exec(OUTBOX_MIGRATIONS.find((m) => m.includes("CREATE TABLE counters"))!);
      state.storage.sql.exec(COUNTER_SET_MIGRATION);
      state.storage.sql.exec(OUTBOX_MIGRATIONS.find((m) => m.includes("state:delivering"))!); // delivering counted as pending, in-flight attempts not counted
    });
    const after = { health: await stub.health(), metrics: await stub.metrics() };
    expect({ ...after.metrics, usage: null }).toEqual({ ...before.metrics, usage: null });
    expect(after.health).toEqual(before.health);
  });
});

describe("retention", () => {
  it("prunes delivered dispatches and their attempts after retentionDays, never dead or held ones, and keeps the counters", async () => {
    fakeTarget((req) =>
      req.headers["webhook-id"] === "bad" ? new Response("", { status: 500 }) : new Response("", { status: req.headers["webhook-id"] === "gone" ? 410 : 200 }),
    );
    const { id, stub } = await newTarget({ retentionDays: 2, retry: { maxAttempts: 1 } });
    await stub.acceptHandoff(id, [makeItem({ deliveryId: "old" }), makeItem({ deliveryId: "bad" })]);
    await fireAlarm(stub);
    clock.advance(DAY);
    await stub.acceptHandoff(id, [makeItem({ deliveryId: "young" })]);
    await fireAlarm(stub);
    await stub.acceptHandoff(id, [makeItem({ deliveryId: "gone" })]); // a 410: the target pauses and holds it
    await fireAlarm(stub);
    const before = { health: await stub.health(), metrics: await stub.metrics() };
    expect(before.health.counts).toMatchObject({ delivered: 2, dead: 1, held: 1 });
    // The alarm wakes when the oldest delivered dispatch is two days old.
    expect(await alarmAt(stub)).toBe(T0 + 2 * DAY);
    vi.setSystemTime(T0 + 2 * DAY);
    await fireAlarm(stub);
    expect(await stub.getDispatch("study-189", "old")).toBeNull();
    expect(await sqlIn(stub, "SELECT COUNT(*) AS n FROM attempts WHERE seq NOT IN (SELECT seq FROM dispatches)")).toEqual([{ n: 0 }]);
    for (const kept of ["young", "bad", "gone"]) expect(await stub.getDispatch("study-189", kept), kept).not.toBeNull();
    const after = { health: await stub.health(), metrics: await stub.metrics() };
    expect(after.health.counts).toEqual(before.health.counts);
    expect({ ...after.metrics, usage: null }).toEqual({ ...before.metrics, usage: null });
    expect(after.health.retention).toEqual({ days: 2, prunedDispatches: 1, prunedAttempts: 1, lastPrunedAt: T0 + 2 * DAY });
    expect(await alarmAt(stub)).toBe(T0 + 3 * DAY);
  });

  it("records retention in the audit trail at most once a day per target, with what was pruned since the last entry", async () => {
    fakeTarget();
    const { id, stub } = await newTarget({ retentionDays: 1 });
    const entries = async () => (await trailOf(env).list({ action: "target.retention-prune", object: `target:${id}`, limit: 10 })).items;
    const deliverOne = async () => {
      await stub.acceptHandoff(id, [makeItem()]);
      await fireAlarm(stub);
    };
    await deliverOne();
    await deliverOne();
    vi.setSystemTime(T0 + 2 * DAY);
    await deliverOne(); // the alarm prunes the two old ones: the first entry
    expect((await entries()).map((e) => JSON.parse(String(e.after)))).toEqual([{ dispatches: 2, attempts: 2, retentionDays: 1, since: null }]);
    vi.setSystemTime(T0 + 2 * DAY + HOUR);
    await deliverOne();
    vi.setSystemTime(T0 + 3 * DAY + 1);
    await deliverOne(); // prunes the one of 2 DAY, a day and a bit after the first entry: a second entry with only that one
    vi.setSystemTime(T0 + 3 * DAY + 2 * HOUR);
    await deliverOne(); // prunes the one of 2 DAY + 1 HOUR, less than a day after the last entry: no entry yet
    const written = await entries();
    expect(written.map((e) => [e.actor, e.action, JSON.parse(String(e.after))])).toEqual([
      ["system", "target.retention-prune", { dispatches: 1, attempts: 1, retentionDays: 1, since: new Date(T0 + 2 * DAY).toISOString() }],
      ["system", "target.retention-prune", { dispatches: 2, attempts: 2, retentionDays: 1, since: null }],
    ]);
    expect((await stub.health()).retention.prunedDispatches).toBe(4);
  });

  it("removes a large backlog of old deliveries in bounded slices, one per alarm run", async () => {
    fakeTarget();
    const { id, stub } = await newTarget({ retentionDays: 1 });
    await stub.acceptHandoff(
      id,
      Array.from({ length: 600 }, () => makeItem()),
    );
    for (let i = 0; i < 30 && (await stub.health()).counts.pending > 0; i++) await fireAlarm(stub);
    vi.setSystemTime(T0 + 2 * DAY);
    await fireAlarm(stub);
    expect((await stub.health()).retention.prunedDispatches).toBe(500);
    expect(await alarmAt(stub)).toBe(T0 + 2 * DAY); // more is due: at once
    await fireAlarm(stub);
    expect((await stub.health()).retention).toMatchObject({ prunedDispatches: 600, prunedAttempts: 600 });
    expect((await stub.health()).counts.delivered).toBe(600);
  });
});

describe("billing units", () => {
  it("reads a bounded number of rows per event, however many delivered dispatches the outbox keeps", async () => {
    fakeTarget();
    const { id, stub } = await newTarget();
    /** Rows read by enqueueing one event and delivering it. */
    const rowsReadByOneEvent = async () => {
      const before = (await stub.metrics()).usage.rowsRead;
      await stub.acceptHandoff(id, [makeItem()]);
      await fireAlarm(stub);
      return (await stub.metrics()).usage.rowsRead - before;
    };
    const few = await rowsReadByOneEvent();
    await stub.acceptHandoff(
      id,
      Array.from({ length: 600 }, () => makeItem()),
    );
    for (let i = 0; i < 30 && (await stub.health()).counts.pending > 0; i++) await fireAlarm(stub);
    expect((await stub.health()).counts.delivered).toBe(601);
    // The same work beside 600 delivered dispatches: no statement on the hot path scans them.
    expect(await rowsReadByOneEvent()).toBeLessThanOrEqual(few + 5);
  });

  it("claims a batch by primary key, however many dispatches are pending", async () => {
    fakeTarget();
    /** Rows read per dispatch delivered by the first alarm after `n` events were enqueued at once. */
    const rowsReadPerDelivered = async (n: number) => {
      const { id, stub } = await newTarget();
      for (let i = 0; i < n; i += 500)
        await stub.acceptHandoff(
          id,
          Array.from({ length: Math.min(500, n - i) }, () => makeItem()),
        );
      const before = (await stub.metrics()).usage.rowsRead;
      await fireAlarm(stub);
      const delivered = (await stub.health()).counts.delivered;
      expect(delivered).toBeGreaterThan(0);
      return ((await stub.metrics()).usage.rowsRead - before) / delivered;
    };
    const small = await rowsReadPerDelivered(60);
    const large = await rowsReadPerDelivered(1200);
    expect(large).toBeLessThanOrEqual(small * 1.5);
  });
});
