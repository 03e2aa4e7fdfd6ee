import { Hono } from "hono";
import { configExists } from "../../config/store";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import type { IntegrityStatus } from "../../ledger/queries";
import { audit } from "../../audit/audit";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema, upstreamErrorSchema } from "../openapi";
import { downloadsOfSource, rawRequestsOfSource } from "../service/pull";
import { checkRegistration, reconcileReports, reportJson, runReconciliation } from "../service/reconcile";
import { ledgerOf } from "../service/stubs";
import { jsonBody, valid } from "../validation";
import { documentRoutes } from "./documents";
import { refuse } from "./refuse";
import { idParam, iso } from "./shared.schemas";
import {
  downloadAnswer,
  downloadsQuery,
  downloadsSchema,
  exportQuery,
  handshakesQuery,
  handshakesSchema,
  integrityRequestBody,
  integritySchema,
  lifecycleSchema,
  rawRequestAnswer,
  rawRequestsQuery,
  rawRequestsSchema,
  reconcileReportSchema,
  reconcileReportsQuery,
  reconcileReportsSchema,
  registrationSchema,
} from "./sources.schemas";

/**
 * `/admin/sources`: the source documents (CRUD), and per source its ledger's lifecycle (archive,
 * retention, export, integrity), handshakes, reconciliation and registration check, raw-data
 * requests and file downloads. KV is checked before a ledger is touched.
 */
export const sources = new Hono<AppEnv>();
documentRoutes(sources, "source");

const unknownSource = { schema: errorBodySchema, description: "no such source" };
const refusals = {
  400: { schema: errorBodySchema, description: "the source has no centrepoint block, or it is invalid or misconfigured (a secret not set)" },
  404: { schema: errorBodySchema, description: "no such source" },
  502: { schema: upstreamErrorSchema, description: "CentrePoint's API failed (404 for an unknown study or webhook included): its status and a short reason" },
};

sources.get(
  "/:id/lifecycle",
  requireRole("viewer"),
  describeAdmin({
    tag: "sources",
    summary:
      "Archive to R2, retention and integrity of a source's ledger: how far each got, what was pruned and when, why either stopped; stored progress only (nothing is checked)",
    responses: { 200: { schema: lifecycleSchema, description: "stored progress (nothing is checked)" }, 404: unknownSource },
  }),
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
    const { head, archive, retention, integrity } = await ledgerOf(c.env, id).lifecycle();
    const { source: _source, ...report } = integrityAnswer(id, integrity);
    return c.json({
      source: id,
      head,
      archive: { ...archive, lastArchivedAt: iso(archive.lastArchivedAt), nextAt: iso(archive.nextAt) },
      retention: { ...retention, lastPrunedAt: iso(retention.lastPrunedAt), nextAt: iso(retention.nextAt) },
      integrity: report,
    });
  },
);

sources.get(
  "/:id/export",
  requireRole("operator"),
  describeAdmin({
    tag: "sources",
    summary:
      "Stream the ledger's records received in [from, to) as NDJSON, one record per line in the archive's format (docs/storage.md), for an audit; check it with `npm run verify-archive` (operator and up: bodies included; a `source.export` audit entry)",
    responses: {
      200: {
        mediaType: "application/x-ndjson",
        description: "a contiguous run of records, oldest first, one per line (empty when none)",
        headers: {
          "X-Export-Start-Seq": "seq of the first record (its line is the first); absent when the export is empty",
          "X-Export-Pruned-Through":
            "retention removed records through this seq (they are in the R2 archive): a range asked from earlier starts after it; absent when nothing was removed",
        },
      },
      400: { schema: errorBodySchema, description: "invalid range" },
      404: unknownSource,
    },
  }),
  valid("param", idParam),
  valid("query", exportQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    const { from, to } = c.req.valid("query");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
    await audit(c, { action: "source.export", object: { source: id }, after: { from: from ?? null, to: to ?? null } });
    const ledger = ledgerOf(c.env, id);
    const range = await ledger.exportRange(from, to);
    const encoder = new TextEncoder();
    let next = range?.firstSeq ?? null;
    // Pulled page by page from the ledger as the client reads: never the whole range in memory.
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (range === null || next === null) return controller.close();
        const page = await ledger.exportPage(next, range.lastSeq);
        next = page.next;
        if (page.text) controller.enqueue(encoder.encode(page.text));
        if (next === null) controller.close();
      },
    });
    const name = `${id}-${from === undefined ? "start" : new Date(from).toISOString()}-${to === undefined ? "now" : new Date(to).toISOString()}.ndjson`;
    const headers: Record<string, string> = {
      "content-type": "application/x-ndjson",
      "content-disposition": `attachment; filename="${name.replace(/:/g, "")}"`,
    };
    if (range) headers["x-export-start-seq"] = String(range.firstSeq);
    const prunedThrough = range?.prunedThrough ?? (await ledger.lifecycle()).retention.recordsPrunedThrough;
    if (prunedThrough > 0) headers["x-export-pruned-through"] = String(prunedThrough);
    return c.body(body, 200, headers);
  },
);

sources.get(
  "/:id/integrity",
  requireRole("viewer"),
  describeAdmin({
    tag: "sources",
    summary:
      "The ledger's latest integrity report and the run under way; starts (or continues) an incremental run from the checkpoint, verifying one slice now and the rest in the background",
    responses: { 200: { schema: integritySchema, description: "the report and progress" }, 404: unknownSource },
  }),
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
    return c.json(integrityAnswer(id, await ledgerOf(c.env, id).checkIntegrity()));
  },
);

sources.post(
  "/:id/integrity",
  requireRole("operator"),
  describeAdmin({
    tag: "sources",
    summary: 'Request an integrity run: incremental, or `{"full": true}` to re-verify the whole chain as a background job',
    responses: {
      200: { schema: integritySchema, description: "the run finished at once (a small ledger)" },
      202: { schema: integritySchema, description: "the run goes on in the background; GET shows its progress" },
      400: { schema: errorBodySchema, description: "invalid body" },
      404: unknownSource,
    },
  }),
  valid("param", idParam),
  jsonBody(),
  valid("json", integrityRequestBody),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
    const { full } = c.req.valid("json");
    await audit(c, { action: "source.integrity-run", object: { source: id }, after: { full: full ?? false } });
    const status = await ledgerOf(c.env, id).checkIntegrity({ full });
    return c.json(integrityAnswer(id, status), status.running ? 202 : 200);
  },
);

sources.get(
  "/:id/handshakes",
  requireRole("viewer"),
  describeAdmin({
    tag: "sources",
    summary: "Recent validation handshakes (audit log, newest 10,000 kept), and how many older ones were dropped",
    responses: { 200: { schema: handshakesSchema, description: "newest first" }, 404: { schema: errorBodySchema, description: "no such source" } },
  }),
  valid("param", idParam),
  valid("query", handshakesQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
    const { items, dropped } = await ledgerOf(c.env, id).listHandshakes(c.req.valid("query").limit);
    return c.json({ items: items.map((h) => ({ ...h, receivedAt: new Date(h.receivedAt).toISOString() })), dropped });
  },
);

sources.get(
  "/:id/raw-requests",
  requireRole("viewer"),
  describeAdmin({
    tag: "raw-data requests",
    summary: "The source's automatic raw-data requests (queued, active, finished, reported), newest first",
    responses: {
      200: { schema: rawRequestsSchema, description: "newest first" },
      400: { schema: errorBodySchema, description: "the source has no centrepoint block" },
      404: { schema: errorBodySchema, description: "no such source" },
    },
  }),
  valid("param", idParam),
  valid("query", rawRequestsQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    const items = await rawRequestsOfSource(c.env, id, c.req.valid("query"));
    return items.ok ? c.json({ source: id, items: items.value.map(rawRequestAnswer) }) : refuse(c, items.error);
  },
);

sources.get(
  "/:id/downloads",
  requireRole("viewer"),
  describeAdmin({
    tag: "raw-data requests",
    summary: "Downloads through the source's relay file links (the audit trail: target, file, time, address), newest first",
    responses: { 200: { schema: downloadsSchema, description: "newest first" }, 404: { schema: errorBodySchema, description: "no such source" } },
  }),
  valid("param", idParam),
  valid("query", downloadsQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    const items = await downloadsOfSource(c.env, id, c.req.valid("query").limit);
    return items.ok ? c.json({ source: id, items: items.value.map(downloadAnswer) }) : refuse(c, items.error);
  },
);

sources.post(
  "/:id/reconcile",
  requireRole("operator"),
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
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
    await audit(c, { action: "source.reconcile", object: { source: id } });
    const run = await runReconciliation(c.env, id, "api");
    return run.ok ? c.json(reportJson(id, run.value)) : refuse(c, run.error);
  },
);

sources.get(
  "/:id/reconcile",
  requireRole("viewer"),
  describeAdmin({
    tag: "reconciliation",
    summary: "Recent reconciliation reports of a source (the newest 200 are kept)",
    responses: { 200: { schema: reconcileReportsSchema, description: "newest first" }, 400: refusals[400], 404: refusals[404] },
  }),
  valid("param", idParam),
  valid("query", reconcileReportsQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    const reports = await reconcileReports(c.env, id, c.req.valid("query").limit);
    return reports.ok ? c.json({ source: id, items: reports.value.map((r) => reportJson(id, r)) }) : refuse(c, reports.error);
  },
);

sources.get(
  "/:id/registration",
  requireRole("viewer"),
  describeAdmin({
    tag: "reconciliation",
    summary: "Check the source's webhook registration in CentrePoint: URL, enabled, subscribed to what the targets want",
    responses: { 200: { schema: registrationSchema, description: "the check; problems in plain words" }, ...refusals },
  }),
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    const check = await checkRegistration(c.env, id);
    if (!check.ok) return refuse(c, check.error);
    const { checkedAt, registration, expectedUrl, problems, notes } = check.value;
    return c.json({ source: id, checkedAt: new Date(checkedAt).toISOString(), ok: problems.length === 0, registration, expectedUrl, problems, notes });
  },
);

/** The integrity answer: the latest report's fields (null until a run finished), the checkpoint and the run under way. */
function integrityAnswer(source: string, s: IntegrityStatus) {
  const r = s.report;
  return {
    source,
    ok: r?.ok ?? null,
    mode: r?.mode ?? null,
    checked: r?.checked ?? 0,
    fromSeq: r?.fromSeq ?? null,
    headHash: r?.headHash ?? null,
    firstBroken: r?.firstBroken ?? null,
    prunedBodies: r?.prunedBodies ?? 0,
    startedAt: iso(r?.startedAt),
    checkedAt: iso(r?.checkedAt),
    verifiedThrough: s.verifiedThrough,
    head: s.head,
    running: s.running && { ...s.running, startedAt: new Date(s.running.startedAt).toISOString() },
  };
}
