import { Hono } from "hono";
import { z } from "zod";
import { idSchema } from "../../config/schemas";
import { configExists } from "../../config/store";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import type { IntegrityStatus } from "../../ledger/queries";
import { describeAdmin, errorBodySchema } from "../openapi";
import { exportQuery, integrityRequestBody, integritySchema, lifecycleSchema } from "../schemas";
import { ledgerOf } from "../service/stubs";
import { jsonBody, valid } from "../validation";

/** Admin routes of a ledger's lifecycle: archive and retention progress, export, integrity. Mounted under /admin; KV is checked before a ledger is touched. */
export const lifecycleRoutes = new Hono<AppEnv>();

const sourceParam = z.object({ id: idSchema });
const unknownSource = { schema: errorBodySchema, description: "no such source" };
const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

lifecycleRoutes.get(
  "/sources/:id/lifecycle",
  describeAdmin({
    tag: "sources",
    summary:
      "Archive to R2, retention and integrity of a source's ledger: how far each got, what was pruned and when, why either stopped; stored progress only (nothing is checked)",
    responses: { 200: { schema: lifecycleSchema, description: "stored progress (nothing is checked)" }, 404: unknownSource },
  }),
  valid("param", sourceParam),
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

lifecycleRoutes.get(
  "/sources/:id/export",
  describeAdmin({
    tag: "sources",
    summary:
      "Stream the ledger's records received in [from, to) as NDJSON, one record per line in the archive's format (docs/storage.md), for an audit; check it with `npm run verify-archive`",
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
  valid("param", sourceParam),
  valid("query", exportQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    const { from, to } = c.req.valid("query");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
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

lifecycleRoutes.get(
  "/sources/:id/integrity",
  describeAdmin({
    tag: "sources",
    summary:
      "The ledger's latest integrity report and the run under way; starts (or continues) an incremental run from the checkpoint, verifying one slice now and the rest in the background",
    responses: { 200: { schema: integritySchema, description: "the report and progress" }, 404: unknownSource },
  }),
  valid("param", sourceParam),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
    return c.json(integrityAnswer(id, await ledgerOf(c.env, id).checkIntegrity()));
  },
);

lifecycleRoutes.post(
  "/sources/:id/integrity",
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
  valid("param", sourceParam),
  jsonBody(),
  valid("json", integrityRequestBody),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
    const status = await ledgerOf(c.env, id).checkIntegrity({ full: c.req.valid("json").full });
    return c.json(integrityAnswer(id, status), status.running ? 202 : 200);
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
