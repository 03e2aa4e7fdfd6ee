import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { channelWants } from "../../src/alerts/messages";
import { notifyIssueChange } from "../../src/alerts/notify";
import { webhookNotificationSchema } from "../../src/alerts/notification-schema";
import { alertChannelSchema } from "../../src/config/alert-schema";
import { T0 } from "../support/clock";
import { alarmAt, fakeTarget, fireAlarm, outboxTestsWithCounters } from "../support/outbox";
import { ALERT_SIGNING_SECRET, channelOutbox, issueChange, putChannel, SLACK_URL } from "../support/channels";

const { advance } = outboxTestsWithCounters();

const webhookChannel = (extra: Record<string, unknown> = {}) => ({
  type: "webhook",
  url: "https://hooks.example/alerts",
  signing: { secretEnv: "TEST_ALERT_SIGNING_SECRET" },
  ...extra,
});

describe("webhook channel", () => {
  it("sends one Standard Webhooks–signed JSON notification per change, webhook-id = the change's id", async () => {
    const receiver = fakeTarget();
    const id = await putChannel(webhookChannel());
    const change = issueChange();
    expect(await notifyIssueChange(env, change)).toMatchObject({ channels: expect.arrayContaining([id]) });
    await fireAlarm(channelOutbox(id));
    const mine = receiver.sent.filter((s) => s.url === "https://hooks.example/alerts");
    expect(mine).toHaveLength(1);
    const [sent] = mine;
    expect(sent!.headers["webhook-id"]).toBe(change.id);
    expect(sent!.headers["content-type"]).toMatch(/^application\/json/);
    const verified = new Webhook(ALERT_SIGNING_SECRET).verify(sent!.body, sent!.headers);
    expect(webhookNotificationSchema.safeParse(verified).error).toBeUndefined(); // the published schema (schema.test.ts)
    expect(verified).toEqual({
      type: "issue.opened",
      timestamp: change.timestamp,
      data: {
        issueId: "iss_01",
        condition: "dead_letters",
        severity: "critical",
        object: { target: "edc" },
        summary: "Target edc has 3 dead dispatches",
        firstSeenAt: "2100-01-01T00:00:00.000Z",
        lastSeenAt: "2100-01-01T00:00:00.000Z",
        count: 3,
        url: "https://relay.example.org/admin/ui/issues/iss_01",
      },
    });
  });

  it("enqueues nothing new when the same change is handed over again", async () => {
    const receiver = fakeTarget();
    const id = await putChannel(webhookChannel());
    const change = issueChange();
    await notifyIssueChange(env, change);
    await notifyIssueChange(env, change);
    await fireAlarm(channelOutbox(id));
    expect(receiver.sent.filter((s) => s.headers["webhook-id"] === change.id && s.url === "https://hooks.example/alerts")).toHaveLength(1);
  });
});

describe("slack channel", () => {
  it("posts a short Block Kit message with the link to the URL named by urlEnv, and never stores that URL", async () => {
    const receiver = fakeTarget(() => new Response(`no_service for ${SLACK_URL}`, { status: 404 }));
    const id = await putChannel({ type: "slack", urlEnv: "TEST_SLACK_URL" });
    await notifyIssueChange(env, issueChange({ type: "issue.resolved" }, { state: "resolved", severity: "warning" }));
    const outbox = channelOutbox(id);
    await fireAlarm(outbox);
    receiver.answer(() => new Response("ok"));
    advance(10 * 60_000);
    await fireAlarm(outbox);
    const sent = receiver.sent.filter((s) => s.url === SLACK_URL);
    expect(sent).toHaveLength(2);
    const body = JSON.parse(sent[1]!.body) as { text: string; blocks: { type: string; text?: { text: string } }[] };
    expect(body.text).toBe("[WARNING] Issue resolved: Target edc has 3 dead dispatches");
    expect(body.blocks.map((b) => b.type)).toEqual(["section", "context", "section"]);
    expect(body.blocks[2]!.text!.text).toBe("<https://relay.example.org/admin/ui/issues/iss_01|Open the issue in the relay>");
    // The first answer echoed the URL: what the outbox kept of it is redacted.
    const stored = await runInDurableObject(outbox, (_, state) =>
      state.storage.sql.exec<{ response_body: string | null }>("SELECT response_body FROM attempts ORDER BY id").toArray(),
    );
    expect(stored[0]!.response_body).toBe("no_service for [redacted]");
    expect(JSON.stringify(stored)).not.toContain("slackSecretPart9f8e");
  });
});

describe("email channel", () => {
  it("sends the mail through the send_email binding, and a mail the binding refuses is a failed attempt", async () => {
    const id = await putChannel({ type: "email", to: ["oncall@site.example", "pi@site.example"], from: "relay@site.example" });
    const outbox = channelOutbox(id);
    const change = issueChange();
    await notifyIssueChange(env, change);
    // The outbox's own binding (the simulated send_email), wrapped to see what it was given.
    const seen = await runInDurableObject(outbox, (instance) => {
      const e = (instance as unknown as { env: { SEND_EMAIL: SendEmail } }).env;
      const real = e.SEND_EMAIL;
      const calls: EmailMessageBuilder[] = [];
      const results: EmailSendResult[] = [];
      e.SEND_EMAIL = {
        send: async (m: EmailMessageBuilder) => {
          calls.push(m);
          const r = await real.send(m);
          results.push(r);
          return r;
        },
      } as SendEmail;
      return { calls, results };
    });
    await fireAlarm(outbox);
    const got = await runInDurableObject(outbox, async () => seen);
    expect(got.calls).toHaveLength(1);
    const mail = got.calls[0]!;
    expect(mail).toMatchObject({ from: "relay@site.example", to: ["oncall@site.example", "pi@site.example"] });
    expect(mail.subject).toBe("[CRITICAL] Issue opened: Target edc has 3 dead dispatches");
    expect(mail.text).toContain("https://relay.example.org/admin/ui/issues/iss_01");
    expect(mail.text).toContain(change.id);
    expect(got.results[0]!.messageId).toMatch(/@/);
    const dispatch = await outbox.getDispatch("issues", change.id);
    expect(dispatch?.dispatch.state).toBe("delivered");
    expect(dispatch?.attempts[0]).toMatchObject({ outcome: "success", status: 202 });

    // A mail the binding refuses (an unverified address) is a failed attempt with the binding's reason, retried later.
    await runInDurableObject(outbox, (instance) => {
      (instance as unknown as { env: { SEND_EMAIL: SendEmail } }).env.SEND_EMAIL = {
        send: async () => Promise.reject(new Error("email to pi@site.example not allowed")),
      } as unknown as SendEmail;
    });
    const next = issueChange();
    await notifyIssueChange(env, next);
    await fireAlarm(outbox);
    const refused = await outbox.getDispatch("issues", next.id);
    expect(refused?.dispatch.state).toBe("pending");
    expect(refused?.attempts[0]).toMatchObject({ outcome: "failure", error: "email to pi@site.example not allowed" });
  });
});

describe("order", () => {
  it("sends an issue's changes in order: resolved waits while opened is being retried; other issues keep flowing", async () => {
    const receiver = fakeTarget((req) =>
      JSON.parse(req.body).data.issueId === "iss_a" && req.body.includes('"issue.opened"') ? new Response("busy", { status: 503 }) : new Response("ok"),
    );
    const id = await putChannel(webhookChannel({ url: "https://ordered.example/alerts" }));
    const outbox = channelOutbox(id);
    const opened = issueChange({ type: "issue.opened" }, { issueId: "iss_a" });
    await notifyIssueChange(env, opened);
    await fireAlarm(outbox);
    advance(1_000);
    const resolved = issueChange({ type: "issue.resolved" }, { issueId: "iss_a", state: "resolved" });
    const other = issueChange({ type: "issue.opened" }, { issueId: "iss_b" });
    await notifyIssueChange(env, resolved);
    await notifyIssueChange(env, other);
    await fireAlarm(outbox);
    const sentIds = () => receiver.sent.filter((s) => s.url === "https://ordered.example/alerts").map((s) => s.headers["webhook-id"]);
    expect(sentIds()).toEqual([opened.id, other.id]);
    expect((await outbox.getDispatch("issues", resolved.id))?.dispatch.state).toBe("pending");
    receiver.answer(() => new Response("ok"));
    for (let i = 0; i < 5 && (await outbox.getDispatch("issues", resolved.id))?.dispatch.state !== "delivered"; i++) {
      const at = await alarmAt(outbox);
      if (at !== null && at > Date.now()) advance(at - Date.now());
      await fireAlarm(outbox);
    }
    expect(sentIds()).toEqual([opened.id, other.id, opened.id, resolved.id]);
  });
});

describe("a failing channel", () => {
  it("ends in its outbox's dead letters, and its own issue goes to the other channels, never to itself", async () => {
    fakeTarget((req) => (req.url.includes("broken") ? new Response("down", { status: 500 }) : new Response("ok")));
    const broken = await putChannel(webhookChannel({ url: "https://broken.example/alerts" }));
    const healthy = await putChannel(webhookChannel({ url: "https://ops.example/alerts" }));
    const first = issueChange();
    await notifyIssueChange(env, first);
    const outbox = channelOutbox(broken);
    // Retries until the window is spent (bounded: the default 72 h window needs about 25 attempts).
    for (let i = 0; i < 60; i++) {
      const at = await alarmAt(outbox);
      const dispatch = await outbox.getDispatch("issues", first.id);
      if (dispatch?.dispatch.state === "dead" || at === null) break;
      if (at > Date.now()) advance(at - Date.now());
      await fireAlarm(outbox);
    }
    expect((await outbox.getDispatch("issues", first.id))?.dispatch.state).toBe("dead");
    expect((await outbox.health()).counts.dead).toBe(1);

    // The issues engine opens dead_letters for {channel: broken}: the healthy channel hears of it, the broken one does not.
    const own = issueChange({}, { issueId: "iss_02", object: { channel: broken }, summary: `Alert channel ${broken} has 1 dead notification` });
    const told = await notifyIssueChange(env, own);
    expect(told.channels).toContain(healthy);
    expect(told.channels).not.toContain(broken);
    expect(await outbox.getDispatch("issues", own.id)).toBeNull();
    expect(await channelOutbox(healthy).getDispatch("issues", own.id)).not.toBeNull();
  }, 30_000); // about 25 alarm runs: slow on a loaded machine
});

describe("channel filters", () => {
  const issue = issueChange().data;
  const channel = (extra: Record<string, unknown>) => alertChannelSchema.parse(webhookChannel(extra));

  it.each([
    [{}, true],
    [{ severity: "critical" }, true],
    [{ severity: "warning" }, true],
    [{ enabled: false }, false],
    [{ conditions: ["dead_letters"] }, true],
    [{ conditions: ["breaker_open", "backlog_age"] }, false],
    [{ objects: ["target:edc"] }, true],
    [{ objects: ["target:*"] }, true],
    [{ objects: ["source:*", "target:other"] }, false],
  ])("a critical dead_letters issue on target:edc with %j: %s", (extra, wanted) => {
    expect(channelWants("ch", channel(extra), issue)).toBe(wanted);
  });

  it("a channel hears nothing of its own issue, named as the channel or as its outbox (target alert:<id>)", () => {
    expect(channelWants("ch", channel({}), { ...issue, object: { channel: "ch" } })).toBe(false);
    expect(channelWants("ch", channel({}), { ...issue, object: { target: "alert:ch" } })).toBe(false);
    expect(channelWants("ch", channel({}), { ...issue, object: { channel: "other" } })).toBe(true);
  });

  it("a channel whose minimum severity is above the issue's hears nothing of it", () => {
    expect(channelWants("ch", channel({ severity: "critical" }), { ...issue, severity: "warning" })).toBe(false);
    expect(channelWants("ch", channel({ severity: "warning" }), { ...issue, severity: "info" })).toBe(false);
    expect(channelWants("ch", channel({ severity: "info" }), { ...issue, severity: "info" })).toBe(true);
  });

  it("notifyIssueChange enqueues only in the channels that want the change", async () => {
    const wants = await putChannel(webhookChannel({ conditions: ["dead_letters"] }));
    const not = await putChannel(webhookChannel({ severity: "critical" }));
    const change = issueChange({}, { severity: "warning" });
    const told = await notifyIssueChange(env, change);
    expect(told.channels).toContain(wants);
    expect(told.channels).not.toContain(not);
    expect(await channelOutbox(not).getDispatch("issues", change.id)).toBeNull();
    expect(await alarmAt(channelOutbox(wants))).toBe(T0);
  });
});
