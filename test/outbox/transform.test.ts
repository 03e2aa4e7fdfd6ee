import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { targetSchema } from "../../src/config/schemas";
import { clearConfigCache } from "../../src/config/store";
import { prepareRequest, type ResolvedTarget, resolveTarget } from "../../src/outbox/attempt";
import { admin, freshId, putSource, putTarget } from "../support/helpers";
import { useClock } from "../support/clock";
import { expectCountersMatchRows, fakeTarget, fireAlarm, makeItem, newTarget, SIGNING_SECRET, sqlIn } from "../support/outbox";

/** TEST_REDCAP_TOKEN of vitest.config.ts. */
const REDCAP_TOKEN = "5A1B9C3D7E2F40618293A4B5C6D7E8F9";

const target = (doc: Record<string, unknown> = {}) => targetSchema.parse({ url: "https://edc.example/hooks", ...doc });

function resolved(doc: Record<string, unknown> = {}): ResolvedTarget {
  const r = resolveTarget(target(doc), env, false, "edc");
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

const item = (overrides: Parameters<typeof makeItem>[0] = {}) =>
  makeItem({
    kind: "daily_statistics.completed",
    body: new TextEncoder().encode('{"subjectIdentifier":"SITE-A-001","date":"2030-06-01","steps":8123}'),
    ...overrides,
  });

const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function send(doc: Record<string, unknown>, it = item()) {
  const prepared = await prepareRequest(it, resolved(doc), Date.now());
  if (prepared.kind !== "send") throw new Error(`not sent: ${JSON.stringify(prepared)}`);
  return prepared.request;
}

describe("transform: validation on save", () => {
  it("refuses a syntax error with a field-level message naming its position", () => {
    const r = targetSchema.safeParse({ url: "https://edc.example/hooks", transform: { body: '{"a": delivery.body.(}' } });
    expect(r.success).toBe(false);
    expect(r.error?.issues).toEqual([expect.objectContaining({ path: ["transform", "body"], message: expect.stringMatching(/JSONata.*position \d+/) })]);
  });

  it("refuses a filter that does not compile, and headers the relay sets itself", () => {
    const r = targetSchema.safeParse({
      url: "https://edc.example/hooks",
      filter: "delivery.body.subjectIdentifier ~> /^SITE-A-",
      transform: { body: "event", headers: { "Webhook-Signature": '"x"' } },
    });
    expect(r.error?.issues.map((i) => i.path.join("."))).toEqual(expect.arrayContaining(["filter", "transform.headers.Webhook-Signature"]));
  });

  it("refuses $secret of a name not listed in transform.secrets", () => {
    const r = targetSchema.safeParse({ url: "https://edc.example/hooks", transform: { body: '{"token": $secret("TEST_REDCAP_TOKEN")}' } });
    expect(r.error?.issues).toEqual([expect.objectContaining({ path: ["transform", "body"], message: expect.stringContaining("not in transform.secrets") })]);
  });

  it("PUT answers a field-level 400 and stores nothing; a secret a source uses is refused as for auth", async () => {
    const id = freshId("t");
    const bad = await admin(`/targets/${id}`, { method: "PUT", body: JSON.stringify({ url: "https://edc.example/hooks", transform: { body: "$$$(" } }) });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: string; fields: { path: string; message: string }[] };
    expect(body.error).toBe("invalid_document");
    expect(body.fields).toEqual([expect.objectContaining({ path: "transform.body", message: expect.stringContaining("position") })]);
    expect((await admin(`/targets/${id}`)).status).toBe(404);

    const source = freshId("s");
    await putSource(source, { auth: { type: "bearer", tokenEnv: "TEST_BEARER_TOKEN" } });
    clearConfigCache();
    const doc = { url: "https://edc.example/hooks", transform: { body: '{"t": $secret("TEST_BEARER_TOKEN")}', secrets: ["TEST_BEARER_TOKEN"] } };
    const conflict = await admin(`/targets/${id}`, { method: "PUT", body: JSON.stringify(doc) });
    expect(conflict.status).toBe(400);
    expect(((await conflict.json()) as { fields: { path: string }[] }).fields).toEqual([expect.objectContaining({ path: "transform.secrets.0" })]);
    const reserved = await admin(`/targets/${id}`, {
      method: "PUT",
      body: JSON.stringify({ url: "https://edc.example/hooks", transform: { body: '$secret("ADMIN_TOKEN")', secrets: ["ADMIN_TOKEN"] } }),
    });
    expect(reserved.status).toBe(400);
  });
});

describe("transform: the request", () => {
  it("sends JSON with the method and headers the expressions give, over event, delivery and target", async () => {
    const req = await send({
      transform: {
        body: '{"subject": delivery.body.subjectIdentifier, "type": event.type, "kind": delivery.kind, "to": target.id}',
        method: "PUT",
        headers: { "X-Site": '$substringBefore(delivery.body.subjectIdentifier, "-0")', "X-None": "delivery.body.missing" },
      },
    });
    expect(req.method).toBe("PUT");
    expect(req.headers["content-type"]).toBe("application/json");
    expect(req.headers["x-site"]).toBe("SITE-A");
    expect(req.headers).not.toHaveProperty("x-none");
    expect(JSON.parse(text(req.body))).toEqual({
      subject: "SITE-A-001",
      type: "com.actigraph.centrepoint.upload.completed",
      kind: "daily_statistics.completed",
      to: "edc",
    });
  });

  it("sends a form with nested values as JSON text and the token from a listed secret", async () => {
    const req = await send({
      transform: {
        contentType: "application/x-www-form-urlencoded",
        body: '{"token": $secret("TEST_REDCAP_TOKEN"), "content": "record", "data": [{"record_id": delivery.body.subjectIdentifier, "steps": delivery.body.steps}], "empty": null}',
        secrets: ["TEST_REDCAP_TOKEN"],
      },
    });
    expect(req.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    const form = new URLSearchParams(text(req.body));
    expect(form.get("token")).toBe(REDCAP_TOKEN);
    expect(form.get("content")).toBe("record");
    expect(JSON.parse(form.get("data")!)).toEqual([{ record_id: "SITE-A-001", steps: 8123 }]);
    expect(form.get("empty")).toBe("");
  });

  it("sends plain text, and refuses an object for it", async () => {
    const req = await send({ transform: { contentType: "text/plain", body: '"steps=" & delivery.body.steps' } });
    expect(req.headers["content-type"]).toBe("text/plain");
    expect(text(req.body)).toBe("steps=8123");
    const bad = await prepareRequest(item(), resolved({ transform: { contentType: "text/plain", body: "delivery.body" } }), 0);
    expect(bad).toEqual({ kind: "transform", error: expect.stringContaining("text/plain") });
  });

  it("signs and authenticates the transformed body", async () => {
    const req = await send({
      transform: { body: '{"n": delivery.body.steps}' },
      signing: { secretEnv: "TEST_SIGNING_SECRET" },
      auth: { type: "bearer", tokenEnv: "TEST_TARGET_TOKEN" },
    });
    expect(req.headers.authorization).toBe("Bearer test-target-token");
    expect(() => new Webhook(SIGNING_SECRET).verify(text(req.body), req.headers)).not.toThrow();
    expect(text(req.body)).toBe('{"n":8123}');
  });

  it("gives $secret nothing that is not listed, even when the name is computed", async () => {
    const r = await prepareRequest(item(), resolved({ transform: { body: '$secret("TEST_" & "TARGET_TOKEN")' } }), 0);
    expect(r).toEqual({ kind: "transform", error: expect.stringContaining("not one of this target's transform.secrets") });
    expect(JSON.stringify(r)).not.toContain("test-target-token");
  });

  it("is a config error naming (not showing) a listed secret that is not set", () => {
    const r = resolveTarget(target({ transform: { body: '$secret("NOT_SET_ANYWHERE")', secrets: ["NOT_SET_ANYWHERE"] } }), env, false);
    expect(r).toEqual({ ok: false, error: "secret NOT_SET_ANYWHERE (transform.secrets) is not set" });
  });

  it("stops a runaway expression (an endless tail call, deep recursion, a huge product) with an error", async () => {
    for (const body of ["($f := function($n){ $f($n+1) }; $f(0))", "($f := function($n){ 1 + $f($n+1) }; $f(0))", "$count([1..1000].([1..1000].(1)))"]) {
      const r = await prepareRequest(item(), resolved({ transform: { body } }), 0);
      expect(r).toEqual({ kind: "transform", error: expect.stringMatching(/^transform\.body: .*(steps|Stack overflow|sequence length)/) });
    }
  }, 20_000);

  it("redacts a secret from an evaluation error's message", async () => {
    const r = await prepareRequest(
      item(),
      resolved({ transform: { body: '$error("token " & $secret("TEST_REDCAP_TOKEN"))', secrets: ["TEST_REDCAP_TOKEN"] } }),
      0,
    );
    expect(r).toEqual({ kind: "transform", error: expect.stringContaining("token [redacted]") });
    expect(JSON.stringify(r)).not.toContain(REDCAP_TOKEN);
  });
});

describe("transform and filter in the outbox", () => {
  beforeEach(() => {
    useClock();
    clearConfigCache();
    vi.spyOn(console, "log").mockImplementation(() => undefined);
  });
  afterEach(async () => {
    await expectCountersMatchRows();
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it("a runaway expression makes the dispatch dead at once with class transform; a replay after the fix uses the new expression", async () => {
    const t = fakeTarget();
    const { id, stub } = await newTarget({ transform: { body: "($f := function($n){ $f($n+1) }; $f(0))" } });
    const it0 = item();
    await stub.acceptHandoff(id, [it0]);
    await fireAlarm(stub);
    const dead = await stub.getDispatch(it0.source, it0.deliveryId);
    expect(dead?.dispatch.state).toBe("dead");
    expect(dead?.attempts).toEqual([expect.objectContaining({ outcome: "failure", errorClass: "transform", error: expect.stringContaining("steps") })]);
    expect(t.sent).toHaveLength(0);
    expect((await stub.health()).breaker.consecutiveFailures).toBe(0);

    await putTarget(id, { url: "https://edc.example/hooks", transform: { body: '{"steps": delivery.body.steps}' } });
    clearConfigCache();
    expect(await stub.replay(it0.source, it0.deliveryId)).toEqual({ found: true, replayed: true });
    await fireAlarm(stub);
    expect(t.sent.map((s) => s.body)).toEqual(['{"steps":8123}']);
    expect((await stub.getDispatch(it0.source, it0.deliveryId))?.dispatch.state).toBe("delivered");
  }, 20_000);

  it("never stores a listed secret a target echoes back", async () => {
    fakeTarget((req) => new Response(`you sent ${req.body}`, { status: 400, headers: { "x-echo": req.body } }));
    const { id, stub } = await newTarget({
      transform: {
        contentType: "application/x-www-form-urlencoded",
        body: '{"token": $secret("TEST_REDCAP_TOKEN"), "t2": $secret("TEST_REDCAP_TOKEN") & " x"}',
        secrets: ["TEST_REDCAP_TOKEN"],
      },
      retry: { maxAttempts: 1 },
    });
    await stub.acceptHandoff(id, [item()]);
    await fireAlarm(stub);
    const stored = JSON.stringify(await sqlIn(stub, "SELECT * FROM attempts")) + JSON.stringify(await sqlIn(stub, "SELECT last_error FROM dispatches"));
    expect(stored).toContain("[redacted]");
    expect(stored).not.toContain(REDCAP_TOKEN);
  });

  it("filter false → not_wanted: nothing sent, counted, visible, and replayable once the filter wants it", async () => {
    const t = fakeTarget();
    const { id, stub } = await newTarget({ filter: "delivery.body.subjectIdentifier ~> /^SITE-A-/" });
    const a = item();
    const b = item({ body: new TextEncoder().encode('{"subjectIdentifier":"SITE-B-007","steps":1}') });
    await stub.acceptHandoff(id, [a, b]);
    await fireAlarm(stub);
    expect(t.sent.map((s) => JSON.parse(s.body).id)).toEqual([a.deliveryId]);
    const skipped = await stub.getDispatch(b.source, b.deliveryId);
    expect(skipped?.dispatch).toMatchObject({ state: "not_wanted", lastError: expect.stringContaining("filter") });
    expect(skipped?.attempts).toEqual([]);
    expect((await stub.health()).counts).toMatchObject({ not_wanted: 1, delivered: 1 });
    const listed = await stub.list({ state: "not_wanted", limit: 10 });
    expect(listed.items.map((d) => d.deliveryId)).toEqual([b.deliveryId]);

    await putTarget(id, { url: "https://edc.example/hooks", filter: "delivery.body.subjectIdentifier ~> /^SITE-(A|B)-/" });
    clearConfigCache();
    expect(await stub.replayWhere({ state: "not_wanted", limit: 10 })).toEqual({ replayed: 1, remaining: 0 });
    await fireAlarm(stub);
    expect(t.sent.map((s) => JSON.parse(s.body).id)).toEqual([a.deliveryId, b.deliveryId]);
  });

  it("a filter that fails to evaluate is a transform error, dead at once", async () => {
    const t = fakeTarget();
    const { id, stub } = await newTarget({ filter: '$error("no site")' });
    const a = item();
    await stub.acceptHandoff(id, [a]);
    await fireAlarm(stub);
    expect(t.sent).toHaveLength(0);
    expect((await stub.getDispatch(a.source, a.deliveryId))?.attempts).toEqual([
      expect.objectContaining({ errorClass: "transform", error: expect.stringContaining("filter: no site") }),
    ]);
  });
});
