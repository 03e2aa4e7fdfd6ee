import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { admin, freshId, putSource } from "../support/helpers";
import { fakeTarget, fireAlarm, outboxTestsWithCounters } from "../support/outbox";
import { ALERT_SIGNING_SECRET, channelOutbox } from "../support/channels";

outboxTestsWithCounters();

const put = (id: string, doc: unknown) => admin(`/alerts/${id}`, { method: "PUT", body: JSON.stringify(doc) });
const webhook = { type: "webhook", url: "https://hooks.example/alerts", signing: { secretEnv: "TEST_ALERT_SIGNING_SECRET" } };

describe("alert channel documents", () => {
  it("creates a channel with its filters' defaults, reads, lists, replaces and deletes it", async () => {
    const id = freshId("ch");
    const created = await put(id, webhook);
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({ id, valid: true, config: { ...webhook, severity: "info", conditions: ["*"], objects: ["*"], enabled: true } });
    expect(await env.CONFIG.get(`alert:${id}`, "json")).toMatchObject({ type: "webhook", severity: "info" });
    expect((await put(id, { ...webhook, severity: "critical" })).status).toBe(200);
    expect(await (await admin(`/alerts/${id}`)).json()).toMatchObject({ id, valid: true, config: { severity: "critical" } });
    const list = (await (await admin("/alerts")).json()) as { items: { id: string }[] };
    expect(list.items.map((i) => i.id)).toContain(id);
    // Deleting needs a reason (the audit trail's rule): without one, 400 and the channel stays.
    const noReason = await admin(`/alerts/${id}`, { method: "DELETE" });
    expect(noReason.status).toBe(400);
    expect(await noReason.json()).toMatchObject({ error: "reason_required" });
    expect((await admin(`/alerts/${id}`)).status).toBe(200);
    const reason = { "x-audit-reason": "channel retired" };
    expect((await admin(`/alerts/${id}`, { method: "DELETE", headers: reason })).status).toBe(204);
    expect((await admin(`/alerts/${id}`)).status).toBe(404);
    expect((await admin(`/alerts/${id}`, { method: "DELETE", headers: reason })).status).toBe(404);

    // Every change is in the audit trail, with the document before and after.
    const trail = (await (await admin(`/audit?object=${encodeURIComponent(`alert:${id}`)}`)).json()) as {
      items: { action: string; before: unknown; after: unknown; reason: string | null }[];
    };
    expect(trail.items.map((e) => e.action)).toEqual(["alert.delete", "alert.put", "alert.put"]);
    expect(trail.items[0]).toMatchObject({ reason: "channel retired", before: { severity: "critical" }, after: null });
    expect(trail.items[1]).toMatchObject({ before: { severity: "info" }, after: { severity: "critical" } });
    expect(trail.items[2]).toMatchObject({ before: null, after: { type: "webhook" } });
  });

  it.each([
    [{ type: "pager" }, "type"],
    [{ type: "webhook", url: "https://hooks.example/a" }, "signing"],
    [{ ...webhook, signing: { secretEnv: "whsec_notAName!" } }, "signing.secretEnv"],
    [{ ...webhook, signing: { secretEnv: "ADMIN_TOKEN" } }, "signing.secretEnv"],
    [{ ...webhook, severity: "urgent" }, "severity"],
    [{ ...webhook, conditions: ["Dead Letters"] }, "conditions.0"],
    [{ ...webhook, objects: ["study:42"] }, "objects.0"],
    [{ type: "slack", urlEnv: "https://hooks.slack.com/services/T/B/X" }, "urlEnv"],
    [{ type: "slack", urlEnv: "TEST_SLACK_URL", url: "https://hooks.slack.com/services/T/B/X" }, "(document)"],
    [{ type: "email", to: [], from: "relay@site.example" }, "to"],
    [{ type: "email", to: ["not an address"], from: "relay@site.example" }, "to.0"],
    [{ ...webhook, url: "https://10.1.2.3/alerts" }, "url"],
  ])("refuses %j with a field-level error on %s and stores nothing", async (doc, path) => {
    const id = freshId("ch");
    const res = await put(id, doc);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; fields: { path: string; message: string }[] };
    expect(body.error).toBe("invalid_document");
    expect(body.fields.map((f) => f.path)).toContain(path);
    expect(await env.CONFIG.get(`alert:${id}`)).toBeNull();
  });

  it("refuses a secret a source uses to authenticate CentrePoint, as targets do", async () => {
    const source = freshId("s");
    await putSource(source); // auth hmac TEST_HMAC_SECRET
    const id = freshId("ch");
    const res = await put(id, { type: "slack", urlEnv: "TEST_HMAC_SECRET" });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { fields: { path: string; message: string }[] };
    expect(body.fields).toEqual([expect.objectContaining({ path: "urlEnv", message: expect.stringContaining(`source:${source}`) })]);
    expect(await env.CONFIG.get(`alert:${id}`)).toBeNull();
  });
});

describe("secret roles across documents", () => {
  it("refuses a source whose webhook secret an alert channel already signs with", async () => {
    const id = freshId("ch");
    expect((await put(id, { ...webhook, signing: { secretEnv: "TEST_ROLE_CHECK_SECRET" } })).status).toBe(201);
    const source = freshId("s");
    const res = await admin(`/sources/${source}`, { method: "PUT", body: JSON.stringify({ auth: { type: "bearer", tokenEnv: "TEST_ROLE_CHECK_SECRET" } }) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { fields: { path: string; message: string }[] };
    expect(body.fields).toEqual([expect.objectContaining({ path: "auth.tokenEnv", message: expect.stringContaining(`alert:${id} (signing.secretEnv)`) })]);
  });
});

describe("POST /admin/alerts/:id/test", () => {
  it("sends a signed test notification through the channel's outbox and its health shows it delivered", async () => {
    const receiver = fakeTarget();
    const id = freshId("ch");
    await put(id, { ...webhook, severity: "critical", conditions: ["dead_letters"] }); // filters do not stop a test
    const res = await admin(`/alerts/${id}/test`, { method: "POST" });
    expect(res.status).toBe(202);
    const { notificationId, enqueued } = (await res.json()) as { notificationId: string; enqueued: boolean };
    expect(enqueued).toBe(true);
    const trail = (await (await admin(`/audit?object=${encodeURIComponent(`notification:${notificationId}`)}`)).json()) as { items: { action: string }[] };
    expect(trail.items.map((e) => e.action)).toEqual(["alert.test"]);
    await fireAlarm(channelOutbox(id));
    const sent = receiver.sent.filter((s) => s.headers["webhook-id"] === notificationId);
    expect(sent).toHaveLength(1);
    const body = new Webhook(ALERT_SIGNING_SECRET).verify(sent[0]!.body, sent[0]!.headers) as { type: string; data: { object: unknown; severity: string } };
    expect(body).toMatchObject({ type: "issue.opened", data: { object: { channel: id }, severity: "info" } });
    const health = (await (await admin(`/alerts/${id}/health`)).json()) as { counts: Record<string, number> };
    expect(health.counts.delivered).toBe(1);
    const metrics = await (await admin("/metrics")).text();
    expect(metrics).toContain(`relay_alert_channel_dead{channel="${id}"} 0`);
    expect(metrics).toContain(`relay_alert_channel_pending{channel="${id}"} 0`);
  });

  it("answers 404 for an unknown channel", async () => {
    expect((await admin(`/alerts/${freshId("ch")}/test`, { method: "POST" })).status).toBe(404);
    expect((await admin(`/alerts/${freshId("ch")}/health`)).status).toBe(404);
  });
});
