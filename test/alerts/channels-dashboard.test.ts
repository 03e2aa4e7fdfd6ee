import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { notifyIssueChange } from "../../src/alerts/notify";
import { get, signIn } from "../support/session";
import { fireAlarm, outboxTestsWithCounters } from "../support/outbox";
import { channelOutbox, issueChange, putChannel } from "../support/channels";

outboxTestsWithCounters();

describe("dashboard: alert channels", () => {
  it("lists the channels with their outbox health, and a failing channel shows as failing with why", async () => {
    const cookie = await signIn();
    const healthy = await putChannel({ type: "email", to: ["oncall@site.example"], from: "relay@site.example", severity: "critical" });
    const broken = await putChannel({ type: "slack", urlEnv: "UNSET_SLACK_URL" });
    await notifyIssueChange(env, issueChange({}, { severity: "warning" }));
    await fireAlarm(channelOutbox(broken)); // the secret is not set: the notification is held

    const res = await get("/admin/ui/alerts", cookie);
    expect(res.status).toBe(200);
    const html = await res.text();
    const row = (id: string) => html.slice(html.indexOf(`<th scope="row">${id}`), html.indexOf("</tr>", html.indexOf(`<th scope="row">${id}`)));
    expect(row(healthy)).toContain("ok</span>");
    expect(row(healthy)).toContain("oncall@site.example from relay@site.example");
    expect(row(healthy)).toContain("critical and above");
    expect(row(broken)).toContain("failing</span>");
    expect(row(broken)).toContain("Slack webhook in secret UNSET_SLACK_URL");
    expect(html).toContain(`Channel ${broken}: holding 1 notification: secret UNSET_SLACK_URL (Slack webhook URL) is not set`);
    expect(html).toContain('href="/admin/ui/alerts"');
  });
});
