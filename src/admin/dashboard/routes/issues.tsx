import type { Context } from "hono";
import { Hono } from "hono";
import { alertsOf } from "../../../alerts/report";
import { audit } from "../../../audit/audit";
import { log } from "../../../lib/log";
import { type AdminEnv, requireAdminPage } from "../../../middleware/admin-auth";
import { acknowledgeBody, issueListQuery, issueParam } from "../../routes/issues.schemas";
import { formPost } from "../csrf";
import { pageRole } from "../roles";
import type { Flash } from "../layout";
import { type IssueFilters, IssuesPage } from "../pages/issues";
import { render, renderError } from "../render";

/** `/admin/ui/issues`: the relay's issues with filters, and their acknowledge and resolve forms (docs/alerting.md). */
export const issues = new Hono<AdminEnv>();

async function renderIssues(c: Context<AdminEnv>, notice: Flash, status: 200 | 400 | 404 | 409 = 200) {
  const parsed = issueListQuery.safeParse({
    state: c.req.query("state") || undefined,
    severity: c.req.query("severity") || undefined,
    object: c.req.query("object") || undefined,
  });
  const query = parsed.success ? parsed.data : { limit: 100 };
  const filters: IssueFilters = {
    state: (parsed.success && parsed.data.state) || "",
    severity: (parsed.success && parsed.data.severity) || "",
    object: (parsed.success && parsed.data.object) || "",
  };
  const items = await alertsOf(c.env).list(query);
  const shown: Flash = notice ?? (parsed.success ? null : { tone: "warn", text: "Some filters were not understood and were ignored." });
  return render(c, (page) => <IssuesPage page={page} issues={items} filters={filters} notice={shown} />, status);
}

issues.get("/", requireAdminPage, pageRole("viewer"), async (c) => {
  const done = c.req.query("done");
  const id = c.req.query("issue") ?? "";
  const notice: Flash =
    done === "acknowledged" ? { tone: "ok", text: `Acknowledged ${id}.` } : done === "resolved" ? { tone: "ok", text: `Resolved ${id}.` } : null;
  return renderIssues(c, notice);
});

/** A POST on an issue: runs the action as the signed-in caller and redirects back, or shows why it was refused. */
for (const action of ["acknowledge", "resolve"] as const) {
  issues.post(`/:id/${action}`, ...formPost, pageRole("operator"), async (c) => {
    const param = issueParam.safeParse({ id: c.req.param("id") });
    if (!param.success) return renderError(c, 404, "No such issue.");
    const id = param.data.id;
    let note: string | null = null;
    if (action === "acknowledge") {
      const form = await c.req.parseBody();
      const raw = typeof form.note === "string" && form.note.trim() !== "" ? form.note.trim() : undefined;
      const body = acknowledgeBody.safeParse({ note: raw });
      if (!body.success) return renderIssues(c, { tone: "bad", text: "The note must be at most 1,000 characters." }, 400);
      note = body.data.note ?? null;
    }
    await audit(c, { action: `issue.${action}`, object: { issue: id }, reason: note });
    const alerts = alertsOf(c.env);
    const r = action === "acknowledge" ? await alerts.acknowledge(id, c.var.actor.id, note) : await alerts.resolve(id, c.var.actor.id);
    if (!r.ok) {
      if (r.reason === "not_found") return renderError(c, 404, `No issue “${id}”.`);
      return renderIssues(c, { tone: "warn", text: `${id} is already ${r.reason}.` }, 409);
    }
    log("info", `issue ${action}d from the dashboard`, { requestId: c.var.requestId, issue: id });
    return c.redirect(`/admin/ui/issues?done=${action}d&issue=${id}`, 303);
  });
}
