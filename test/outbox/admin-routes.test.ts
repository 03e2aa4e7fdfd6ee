import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearConfigCache } from "../../src/config/store";
import { admin } from "../support/helpers";
import { T0, useClock } from "../support/clock";
import { fakeTarget, fireAlarm, makeItem, newTarget, expectCountersMatchRows } from "../support/outbox";

/** The admin routes of src/admin/outbox-routes.ts, end to end through the Worker. */

beforeEach(() => {
  useClock();
  clearConfigCache();
});

afterEach(async () => {
  await expectCountersMatchRows();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A POST with an operator's reason (bulk replay needs one: test/audit/trail.test.ts checks the refusal without). */
const post = (path: string, body?: unknown) =>
  admin(path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body), headers: { "x-audit-reason": "test" } });

/** A target (maxAttempts 1) holding the given deliveries dead; the fake target then answers 200. */
async function targetWithDead(items: ReturnType<typeof makeItem>[]) {
  const target = fakeTarget(() => new Response("", { status: 500 }));
  const t = await newTarget({ retry: { maxAttempts: 1 } });
  await t.stub.acceptHandoff(t.id, items);
  await fireAlarm(t.stub);
  target.answer(() => new Response("ok"));
  return { ...t, target };
}

describe("POST /admin/deliveries/:source/:id/replay", () => {
  it("replays one delivery on the named target", async () => {
    const item = makeItem();
    const { id, stub, target } = await targetWithDead([item]);
    const res = await post(`/deliveries/${item.source}/${item.deliveryId}/replay`, { target: id });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ source: item.source, deliveryId: item.deliveryId, targets: [{ target: id, replayed: true, payloadFrom: "outbox" }] });
    await fireAlarm(stub);
    expect(target.sent).toHaveLength(2);
  });

  it("replays on every target that has the delivery when no target is named", async () => {
    const item = makeItem();
    const a = await targetWithDead([item]);
    const b = await targetWithDead([item]);
    const body = (await (await post(`/deliveries/${item.source}/${item.deliveryId}/replay`)).json()) as { targets: { target: string }[] };
    expect(body.targets.map((t) => t.target).sort()).toEqual([a.id, b.id].sort());
  });

  it("answers 404 when no target has the delivery", async () => {
    await newTarget();
    const res = await post("/deliveries/study-189/never-seen/replay");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
  });

  it("answers 400 with field errors for a bad body", async () => {
    const res = await post("/deliveries/study-189/x/replay", { target: "Not An Id", extra: 1 });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; fields: { path: string }[] };
    expect(body.error).toBe("bad_request");
    expect(body.fields.map((f) => f.path).sort()).toEqual(["(document)", "target"]);
  });
});

describe("POST /admin/replay", () => {
  it("replays dead deliveries across targets within one budget and says when more remain", async () => {
    await targetWithDead([makeItem(), makeItem()]);
    await targetWithDead([makeItem(), makeItem()]);
    const body = (await (await post("/replay", { limit: 3 })).json()) as { replayed: number; more: boolean };
    expect(body).toMatchObject({ replayed: 3, more: true });
  });

  it("limits a bulk replay to one target and a time range", async () => {
    const t = await targetWithDead([makeItem({ receivedAt: T0 - 60_000 }), makeItem({ receivedAt: T0 - 1000 })]);
    const res = await post("/replay", { target: t.id, from: new Date(T0 - 10_000).toISOString() });
    expect(await res.json()).toEqual({ replayed: 1, more: false, targets: [{ target: t.id, replayed: 1, remaining: 0 }] });
  });

  it("answers 400 with field errors for an unbounded or unknown request", async () => {
    const res = await post("/replay", { limit: 5000, state: "pending", from: "yesterday" });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { fields: { path: string }[] };
    expect(body.fields.map((f) => f.path).sort()).toEqual(["from", "limit", "state"]);
  });

  it("answers 400 for a body that is not JSON", async () => {
    expect((await admin("/replay", { method: "POST", body: "{" })).status).toBe(400);
  });
});

describe("GET /admin/targets/:id/dead", () => {
  it("pages dead letters with a cursor", async () => {
    const items = [makeItem(), makeItem()];
    const { id } = await targetWithDead(items);
    const first = (await (await admin(`/targets/${id}/dead?limit=1`)).json()) as { items: { deliveryId: string }[]; next: string };
    const second = (await (await admin(`/targets/${id}/dead?limit=1&cursor=${first.next}`)).json()) as { items: { deliveryId: string }[]; next: string | null };
    expect([...first.items, ...second.items].map((d) => d.deliveryId)).toEqual([items[1]!.deliveryId, items[0]!.deliveryId]);
    expect(second.next).toBeNull();
  });

  it("answers 400 for a bad query", async () => {
    const { id } = await newTarget();
    const res = await admin(`/targets/${id}/dead?limit=0&cursor=abc`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { fields: { path: string }[] }).fields.map((f) => f.path).sort()).toEqual(["cursor", "limit"]);
  });
});

describe("GET /admin/targets/:id/health and POST /admin/targets/:id/resume", () => {
  it("reports the target's health", async () => {
    const { id } = await targetWithDead([makeItem()]);
    const body = (await (await admin(`/targets/${id}/health`)).json()) as { targetId: string; counts: { dead: number } };
    expect(body).toMatchObject({ targetId: id, counts: { dead: 1 } });
  });

  it("resumes a target's held deliveries", async () => {
    fakeTarget();
    const { id, stub } = await newTarget({ enabled: false });
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    expect(await (await post(`/targets/${id}/resume`)).json()).toEqual({ target: id, resumed: 1 });
  });

  it("answers 400 for an id that cannot be a target", async () => {
    expect((await admin("/targets/Bad.Id/health")).status).toBe(400);
  });
});

describe("saving a target through the admin API", () => {
  it("resumes the events held after a 410 once the target is saved enabled", async () => {
    const target = fakeTarget(() => new Response("", { status: 410 }));
    const { id, stub } = await newTarget();
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    target.answer(() => new Response("ok"));
    const put = await admin(`/targets/${id}`, { method: "PUT", body: JSON.stringify({ url: "https://edc.example/hooks", enabled: true }) });
    expect(put.status).toBe(200);
    await fireAlarm(stub);
    expect((await stub.health()).counts).toMatchObject({ delivered: 1, held: 0 });
  });
});
