import { type Context, Hono } from "hono";
import { z } from "zod";
import { idSchema } from "../../config/schemas";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import { describeAdmin, errorBodySchema, upstreamErrorSchema } from "../openapi";
import { reconcileReportSchema, reconcileReportsQuery, reconcileReportsSchema, registrationSchema } from "../schemas";
import { checkRegistration, reconcileReports, type Refusal, reportJson, runReconciliation } from "../service/reconcile";
import { valid } from "../validation";

/** Admin routes of reconciliation against CentrePoint's delivery history and of the registration check. Mounted under /admin. */
export const reconcileRoutes = new Hono<AppEnv>();

const sourceParam = z.object({ id: idSchema });
const refusals = {
  400: { schema: errorBodySchema, description: "the source has no centrepoint block, or it is invalid or misconfigured (a secret not set)" },
  404: { schema: errorBodySchema, description: "no such source" },
  502: { schema: upstreamErrorSchema, description: "CentrePoint's API failed (404 for an unknown study or webhook included): its status and a short reason" },
};

reconcileRoutes.post(
  "/sources/:id/reconcile",
  describeAdmin({
    tag: "reconciliation",
    summary: "Reconcile the source's ledger against CentrePoint's delivery history now; backfills what is missing",
    responses: {
      200: {
        schema: reconcileReportSchema,
        description: "the report; complete false: the history is longer than one invocation and the run continues in the background",
      },
      ...refusals,
      409: { schema: errorBodySchema, description: "source_disabled: the source is disabled (`enabled: false`); nothing runs until it is enabled again" },
    },
  }),
  valid("param", sourceParam),
  async (c) => {
    const { id } = c.req.valid("param");
    const run = await runReconciliation(c.env, id, "api");
    return run.ok ? c.json(reportJson(id, run.value)) : refuse(c, run.error);
  },
);

reconcileRoutes.get(
  "/sources/:id/reconcile",
  describeAdmin({
    tag: "reconciliation",
    summary: "Recent reconciliation reports of a source (the newest 200 are kept)",
    responses: { 200: { schema: reconcileReportsSchema, description: "newest first" }, 400: refusals[400], 404: refusals[404] },
  }),
  valid("param", sourceParam),
  valid("query", reconcileReportsQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    const reports = await reconcileReports(c.env, id, c.req.valid("query").limit);
    return reports.ok ? c.json({ source: id, items: reports.value.map((r) => reportJson(id, r)) }) : refuse(c, reports.error);
  },
);

reconcileRoutes.get(
  "/sources/:id/registration",
  describeAdmin({
    tag: "reconciliation",
    summary: "Check the source's webhook registration in CentrePoint: URL, enabled, subscribed to what the targets want",
    responses: { 200: { schema: registrationSchema, description: "the check; problems in plain words" }, ...refusals },
  }),
  valid("param", sourceParam),
  async (c) => {
    const { id } = c.req.valid("param");
    const check = await checkRegistration(c.env, id);
    if (!check.ok) return refuse(c, check.error);
    const { checkedAt, registration, expectedUrl, problems, notes } = check.value;
    return c.json({ source: id, checkedAt: new Date(checkedAt).toISOString(), ok: problems.length === 0, registration, expectedUrl, problems, notes });
  },
);

/** Answers a refusal of the reconciliation and pull services. */
export function refuse(c: Context<AppEnv>, r: Refusal): Response {
  return errorResponse(c, r.status, r.code, r.message, r.upstream ? { upstream: r.upstream } : undefined);
}
