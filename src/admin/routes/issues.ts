import { Hono } from "hono";
import { z } from "zod";
import type { Context } from "hono";
import { alertsOf } from "../../alerts/report";
import type { IssueActionResult } from "../../alerts/alerts";
import { alertingSchema, loadAlerting, saveAlerting } from "../../config/alerting";
import type { AppEnv } from "../../env";
import { audit } from "../../audit/audit";
import { errorResponse } from "../../lib/errors";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { jsonBody, valid } from "../validation";
import { acknowledgeBody, alertingAnswerSchema, issueListQuery, issueParam, issueSchema } from "./issues.schemas";

/**
 * `/admin/issues` (docs/alerting.md): the relay's issues, read by viewers, acknowledged and resolved
 * by operators (each an audit entry, written before the change); and `/admin/alerting`, the
 * conditions' thresholds document (admin).
 */
export const issues = new Hono<AppEnv>();

issues.get(
  "/",
  describeAdmin({
    tag: "issues",
    summary: "List issues (unresolved first, then newest), by state, severity and object",
    responses: {
      200: { schema: z.object({ items: z.array(issueSchema) }), description: "the issues" },
      400: { schema: errorBodySchema, description: "invalid filter" },
    },
  }),
  requireRole("viewer"),
  valid("query", issueListQuery),
  async (c) => c.json({ items: await alertsOf(c.env).list(c.req.valid("query")) }),
);

issues.get(
  "/:id",
  describeAdmin({
    tag: "issues",
    summary: "Read one issue",
    responses: { 200: { schema: issueSchema, description: "the issue" }, 404: { schema: errorBodySchema, description: "no such issue" } },
  }),
  requireRole("viewer"),
  valid("param", issueParam),
  async (c) => {
    const issue = await alertsOf(c.env).get(c.req.valid("param").id);
    return issue ? c.json(issue) : errorResponse(c, 404, "not_found", `No issue "${c.req.valid("param").id}".`);
  },
);

/** The answer of an acknowledge or resolve. */
function answerAction(c: Context<AppEnv>, id: string, r: IssueActionResult) {
  if (r.ok) return c.json(r.issue);
  if (r.reason === "not_found") return errorResponse(c, 404, "not_found", `No issue "${id}".`);
  return errorResponse(c, 409, "conflict", `Issue "${id}" is already ${r.reason}.`);
}

issues.post(
  "/:id/acknowledge",
  describeAdmin({
    tag: "issues",
    summary: "Acknowledge an open issue (as the caller, with an optional note); it still resolves itself when its condition clears",
    responses: {
      200: { schema: issueSchema, description: "acknowledged" },
      404: { schema: errorBodySchema, description: "no such issue" },
      409: { schema: errorBodySchema, description: "already acknowledged or resolved" },
    },
  }),
  requireRole("operator"),
  valid("param", issueParam),
  jsonBody(),
  valid("json", acknowledgeBody),
  async (c) => {
    const { id } = c.req.valid("param");
    const note = c.req.valid("json").note ?? null;
    await audit(c, { action: "issue.acknowledge", object: { issue: id }, reason: note });
    return answerAction(c, id, await alertsOf(c.env).acknowledge(id, c.var.actor.id, note));
  },
);

issues.post(
  "/:id/resolve",
  describeAdmin({
    tag: "issues",
    summary: "Resolve an issue by hand (as the caller); if its condition is still true, the next evaluation reopens it",
    responses: {
      200: { schema: issueSchema, description: "resolved" },
      404: { schema: errorBodySchema, description: "no such issue" },
      409: { schema: errorBodySchema, description: "already resolved" },
    },
  }),
  requireRole("operator"),
  valid("param", issueParam),
  async (c) => {
    const { id } = c.req.valid("param");
    await audit(c, { action: "issue.resolve", object: { issue: id } });
    return answerAction(c, id, await alertsOf(c.env).resolve(id, c.var.actor.id));
  },
);

/** `/admin/alerting`: the conditions' thresholds document (docs/alerting.md). */
export const alerting = new Hono<AppEnv>();

alerting.get(
  "/",
  describeAdmin({
    tag: "issues",
    summary: "Read the alerting document (the defaults when none is stored; an invalid stored one with its errors)",
    responses: { 200: { schema: alertingAnswerSchema, description: "the document that applies" } },
  }),
  requireRole("viewer"),
  async (c) => {
    const loaded = await loadAlerting(c.env.CONFIG);
    if (loaded.state === "invalid") return c.json({ stored: true, valid: false, config: loaded.config, errors: loaded.errors });
    return c.json({ stored: loaded.state === "valid", valid: true, config: loaded.config });
  },
);

alerting.put(
  "/",
  describeAdmin({
    tag: "issues",
    summary: "Replace the alerting document; defaults are filled in",
    responses: {
      200: { schema: alertingAnswerSchema, description: "stored" },
      400: { schema: errorBodySchema, description: "invalid document, with field-level errors" },
    },
  }),
  requireRole("admin"),
  jsonBody("invalid_document"),
  valid("json", alertingSchema, "invalid_document"),
  async (c) => {
    const config = c.req.valid("json");
    const before = await loadAlerting(c.env.CONFIG);
    await audit(c, {
      action: "alerting.put",
      before: before.state === "valid" ? before.config : before.state === "invalid" ? { invalid: before.errors } : null,
      after: config,
    });
    await saveAlerting(c.env.CONFIG, config);
    return c.json({ stored: true, valid: true, config });
  },
);
