import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { alertsOf } from "../../src/alerts/report";
import { clockForEachTest } from "../support/clock";
import { freshId } from "../support/helpers";
import { csrfOf, get, postForm, signIn } from "../support/session";

/** The dashboard's Issues page (filters, acknowledge and resolve forms with the session's CSRF token) and the overview's "Needs attention" fed by issues. */

clockForEachTest({ quiet: ["log", "warn"] });

async function open(path: string, cookie?: string) {
  const c = cookie ?? (await signIn());
  const res = await get(path, c);
  return { status: res.status, html: await res.text(), cookie: c };
}

async function openIssue(condition: "dead_letters" | "backlog_age" | "refused_deliveries", object: { source: string } | { target: string }, summary: string) {
  await alertsOf(env).report({ condition, object, summary });
  const key = "source" in object ? `source:${object.source}` : `target:${object.target}`;
  const [issue] = await alertsOf(env).list({ object: key, limit: 1 });
  return issue!;
}

describe("the Issues page", () => {
  it("lists issues with their severity, object, summary and state, and filters them", async () => {
    const target = freshId("edc");
    const issue = await openIssue("dead_letters", { target }, "3 dispatches went dead");
    const { html, status, cookie } = await open("/admin/ui/issues");
    expect(status).toBe(200);
    expect(html).toContain('aria-current="page">Issues');
    expect(html).toContain(issue.issueId);
    expect(html).toContain("3 dispatches went dead");
    expect(html).toContain(`href="/admin/ui/targets/${target}"`);
    const filtered = await open(`/admin/ui/issues?severity=info&object=target:${target}`, cookie);
    expect(filtered.html).not.toContain(issue.issueId);
    expect(filtered.html).toContain("No issues match.");
  });

  it("acknowledges an issue with a note as the signed-in caller, through a CSRF-guarded form", async () => {
    const issue = await openIssue("backlog_age", { target: freshId("edc") }, "oldest pending dispatch is 20 minutes old");
    const { html, cookie } = await open("/admin/ui/issues");
    const res = await postForm(`/admin/ui/issues/${issue.issueId}/acknowledge`, { _csrf: csrfOf(html), note: "EDC maintenance" }, { cookie });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`/admin/ui/issues?done=acknowledged&issue=${issue.issueId}`);
    expect(await alertsOf(env).get(issue.issueId)).toMatchObject({ state: "acknowledged", acknowledgedBy: "admin-token", note: "EDC maintenance" });
    const after = await open(res.headers.get("location")!, cookie);
    expect(after.html).toContain(`Acknowledged ${issue.issueId}.`);
    expect(after.html).toContain("“EDC maintenance”");
  });

  it("refuses a form without the session's CSRF token, and changes nothing", async () => {
    const issue = await openIssue("dead_letters", { target: freshId("edc") }, "1 dispatch went dead");
    const cookie = await signIn();
    const res = await postForm(`/admin/ui/issues/${issue.issueId}/resolve`, { _csrf: "forged" }, { cookie });
    expect(res.status).toBe(403);
    expect(await alertsOf(env).get(issue.issueId)).toMatchObject({ state: "open" });
  });

  it("resolves an issue by hand; resolving it again says so", async () => {
    const issue = await openIssue("dead_letters", { target: freshId("edc") }, "1 dispatch went dead");
    const { html, cookie } = await open("/admin/ui/issues");
    const res = await postForm(`/admin/ui/issues/${issue.issueId}/resolve`, { _csrf: csrfOf(html) }, { cookie });
    expect(res.status).toBe(303);
    expect(await alertsOf(env).get(issue.issueId)).toMatchObject({ state: "resolved", resolvedBy: "admin-token" });
    const again = await postForm(`/admin/ui/issues/${issue.issueId}/resolve`, { _csrf: csrfOf(html) }, { cookie });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain("is already resolved");
  });
});

describe("the overview's Needs attention", () => {
  it("lists an unresolved issue that no live read shows, with its summary and id", async () => {
    const source = freshId("src");
    const issue = await openIssue("refused_deliveries", { source }, "5 deliveries refused (401/403) in 10 minutes");
    const { html } = await open("/admin/");
    expect(html).toContain(`Source ${source}: 5 deliveries refused (401/403) in 10 minutes`);
    expect(html).toContain(`href="/admin/ui/issues#${issue.issueId}"`);
  });

  it("shows who acknowledged an issue", async () => {
    const source = freshId("src");
    const issue = await openIssue("refused_deliveries", { source }, "6 deliveries refused (401/403) in 10 minutes");
    await alertsOf(env).acknowledge(issue.issueId, "alice@site.org", null);
    const { html } = await open("/admin/");
    expect(html).toContain(`${issue.issueId} · acknowledged by alice@site.org`);
  });
});
