import { env } from "cloudflare:test";
import { clockForEachTest } from "../support/clock";
import { afterEach, describe, expect, it } from "vitest";
import { alertsOf } from "../../src/alerts/report";
import { admin } from "../support/helpers";

/**
 * The admin API of issues and the alerting document: GET|PUT /admin/alerting (validated, defaults
 * when absent), GET /admin/issues with filters, acknowledge and resolve, and the open-issues metric.
 * The relay has one Alerts object; this file's tests share it (storage is per test file).
 */

clockForEachTest();

const put = (path: string, body: unknown) => admin(path, { method: "PUT", body: JSON.stringify(body) });
const post = (path: string, body?: unknown) => admin(path, { method: "POST", ...(body !== undefined && { body: JSON.stringify(body) }) });

afterEach(async () => {
  await env.CONFIG.delete("alerting");
});

describe("the alerting document", () => {
  it("reads as the defaults when absent", async () => {
    const res = await admin("/alerting");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      stored: false,
      valid: true,
      config: { breakerOpenMinutes: 10, oldestPendingMinutes: 15, heldMinutes: 60, refusedPerTenMinutes: 5, silentHours: {}, conditions: {} },
    });
  });

  it("stores a valid document with the defaults filled in", async () => {
    const res = await put("/alerting", { breakerOpenMinutes: 5, silentHours: { "study-42": 6 }, conditions: { backlog_age: { severity: "critical" } } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { config: Record<string, unknown> };
    expect(body.config).toMatchObject({
      breakerOpenMinutes: 5,
      oldestPendingMinutes: 15,
      silentHours: { "study-42": 6 },
      conditions: { backlog_age: { enabled: true, severity: "critical" } },
    });
    expect(await (await admin("/alerting")).json()).toMatchObject({ stored: true, valid: true, config: { breakerOpenMinutes: 5 } });
  });

  it.each([
    [{ breakerOpenMinutes: 0 }, "breakerOpenMinutes"],
    [{ refusedPerTenMinutes: "5" }, "refusedPerTenMinutes"],
    [{ silentHours: { "Not An Id": 3 } }, "silentHours.Not An Id"],
    [{ silentHours: { s1: 0 } }, "silentHours.s1"],
    [{ conditions: { no_such_condition: { enabled: false } } }, "conditions"],
    [{ conditions: { dead_letters: { severity: "fatal" } } }, "conditions.dead_letters.severity"],
    [{ heldMinutes: 60, extra: true }, "(document)"],
  ])("refuses %j with a field-level 400 naming %s, and changes nothing", async (doc, path) => {
    await put("/alerting", { heldMinutes: 30 });
    const res = await put("/alerting", doc);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; fields: { path: string }[] };
    expect(body.error).toBe("invalid_document");
    expect(body.fields.map((f) => f.path)).toContain(path);
    expect(await (await admin("/alerting")).json()).toMatchObject({ config: { heldMinutes: 30 } });
  });

  it("refuses a body that is not JSON", async () => {
    const res = await admin("/alerting", { method: "PUT", body: "{nope" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_document" });
  });

  it("reports an invalid stored document with its errors (the defaults apply meanwhile)", async () => {
    await env.CONFIG.put("alerting", JSON.stringify({ heldMinutes: -1 }));
    const body = (await (await admin("/alerting")).json()) as { valid: boolean; errors: { path: string }[]; config: { heldMinutes: number } };
    expect(body).toMatchObject({ stored: true, valid: false, config: { heldMinutes: 60 } });
    expect(body.errors.map((e) => e.path)).toEqual(["heldMinutes"]);
  });
});

describe("issues", () => {
  async function openIssue(target: string, condition: "dead_letters" | "backlog_age" = "dead_letters"): Promise<string> {
    await alertsOf(env).report({ condition, object: { target }, summary: `${condition} on ${target}` });
    const res = await admin(`/issues?object=target:${target}`);
    const { items } = (await res.json()) as { items: { issueId: string; condition: string }[] };
    return items.find((i) => i.condition === condition)!.issueId;
  }

  it("lists issues with filters by state, severity and object", async () => {
    const a = await openIssue("api-t1");
    await openIssue("api-t2", "backlog_age");
    const all = (await (await admin("/issues")).json()) as { items: { issueId: string; url: string }[] };
    expect(all.items.map((i) => i.issueId)).toContain(a);
    expect(all.items.find((i) => i.issueId === a)!.url).toBe("https://relay.example.org/admin/ui/targets/api-t1");
    const critical = (await (await admin("/issues?severity=critical&object=target:api-t2")).json()) as { items: unknown[] };
    expect(critical.items).toEqual([]);
    const warning = (await (await admin("/issues?severity=warning&state=open&object=target:api-t2")).json()) as { items: { condition: string }[] };
    expect(warning.items.map((i) => i.condition)).toEqual(["backlog_age"]);
  });

  it("refuses an unknown state, severity or object form", async () => {
    for (const q of ["state=closed", "severity=fatal", "object=api-t1", "limit=0"]) {
      const res = await admin(`/issues?${q}`);
      expect(res.status, q).toBe(400);
      expect(await res.json()).toMatchObject({ error: "bad_request" });
    }
  });

  it("reads one issue, and answers 404 for one that does not exist", async () => {
    const id = await openIssue("api-t3");
    expect(await (await admin(`/issues/${id}`)).json()).toMatchObject({ issueId: id, condition: "dead_letters", state: "open" });
    expect((await admin("/issues/issue-987654")).status).toBe(404);
  });

  it("acknowledges an issue as the caller, with a note; a second acknowledgement is a 409", async () => {
    const id = await openIssue("api-t4");
    const res = await post(`/issues/${id}/acknowledge`, { note: "EDC down for maintenance until 14:00" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ issueId: id, state: "acknowledged", acknowledgedBy: "admin-token", note: "EDC down for maintenance until 14:00" });
    const again = await post(`/issues/${id}/acknowledge`, {});
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: "conflict" });
  });

  it("acknowledges without a body; refuses a note that is not a short string", async () => {
    const id = await openIssue("api-t5");
    expect((await post(`/issues/${id}/acknowledge`, { note: "x".repeat(1001) })).status).toBe(400);
    expect((await post(`/issues/${id}/acknowledge`)).status).toBe(200);
  });

  it("resolves an issue by hand as the caller; resolving it again is a 409, an unknown one a 404", async () => {
    const id = await openIssue("api-t6");
    const res = await post(`/issues/${id}/resolve`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ issueId: id, state: "resolved", resolvedBy: "admin-token" });
    expect((await post(`/issues/${id}/resolve`)).status).toBe(409);
    expect((await post("/issues/issue-987654/resolve")).status).toBe(404);
    expect((await post("/issues/issue-987654/acknowledge")).status).toBe(404);
  });

  it("exposes unresolved issues as relay_issues_open{condition,severity}", async () => {
    await openIssue("api-t7");
    const text = await (await admin("/metrics")).text();
    expect(text).toContain("# TYPE relay_issues_open gauge");
    expect(text).toMatch(/relay_issues_open\{condition="dead_letters",severity="critical"\} [1-9]/);
  });

  it("documents the routes in the OpenAPI document", async () => {
    const doc = (await (await admin("/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/admin/alerting"] ?? {})).toEqual(expect.arrayContaining(["get", "put"]));
    expect(Object.keys(doc.paths["/admin/issues"] ?? {})).toEqual(["get"]);
    expect(doc.paths["/admin/issues/{id}/acknowledge"]?.post).toBeDefined();
    expect(doc.paths["/admin/issues/{id}/resolve"]?.post).toBeDefined();
  });
});
