import { Hono } from "hono";
import { trailOf } from "../../audit/audit";
import type { AuditLine } from "../../audit/format";
import type { AuditStatus } from "../../audit/trail";
import type { AppEnv } from "../../env";
import type { Family } from "../../lib/prometheus";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { valid } from "../validation";
import { auditExportQuery, auditListQuery, auditPageSchema, auditStatusSchema } from "./audit.schemas";

/**
 * `/admin/audit`: the audit trail (docs/audit.md), newest first with filters, its NDJSON export for
 * `npm run verify-archive`, and the chain's state. Operator and up: the trail names people, their
 * addresses and their reasons, which viewers (dashboards, monitoring tokens) do not need.
 */
export const auditRoutes = new Hono<AppEnv>();

auditRoutes.get(
  "/",
  requireRole("operator"),
  describeAdmin({
    tag: "audit",
    summary: "The audit trail, newest first: who did what, when, through which door, why, with before/after of configuration changes",
    responses: {
      200: { schema: auditPageSchema, description: "a page; pass `next` as `cursor` for the following one" },
      400: { schema: errorBodySchema, description: "invalid filter" },
    },
  }),
  valid("query", auditListQuery),
  async (c) => {
    const page = await trailOf(c.env).list(c.req.valid("query"));
    return c.json({ items: page.items.map(entryJson), next: page.next });
  },
);

auditRoutes.get(
  "/export",
  requireRole("operator"),
  describeAdmin({
    tag: "audit",
    summary:
      "Stream the trail's entries written in [from, to) as NDJSON, oldest first, one entry per line exactly as chained (docs/audit.md); check it with `npm run verify-archive`",
    responses: {
      200: { mediaType: "application/x-ndjson", description: "a contiguous run of entries, oldest first (empty when none)" },
      400: { schema: errorBodySchema, description: "invalid range" },
    },
  }),
  valid("query", auditExportQuery),
  async (c) => {
    const { from, to } = c.req.valid("query");
    const trail = trailOf(c.env);
    const range = await trail.exportRange(from, to);
    const encoder = new TextEncoder();
    let next = range?.firstSeq ?? null;
    // Pulled page by page from the trail as the client reads: never the whole range in memory.
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (range === null || next === null) return controller.close();
        const page = await trail.exportPage(next, range.lastSeq);
        next = page.next;
        if (page.text) controller.enqueue(encoder.encode(page.text));
        if (next === null) controller.close();
      },
    });
    const name = `audit-${from === undefined ? "start" : new Date(from).toISOString()}-${to === undefined ? "now" : new Date(to).toISOString()}.ndjson`;
    return c.body(body, 200, { "content-type": "application/x-ndjson", "content-disposition": `attachment; filename="${name.replace(/:/g, "")}"` });
  },
);

auditRoutes.get(
  "/status",
  requireRole("operator"),
  describeAdmin({
    tag: "audit",
    summary: "The chain's state: its head, how far it is archived to R2, and a verification of the stored entries (continued from the last one)",
    responses: { 200: { schema: auditStatusSchema, description: "the state" } },
  }),
  async (c) => c.json(statusJson(await trailOf(c.env).verify())),
);

/** The trail's metrics, from its stored state (no verification runs for a scrape). */
export function auditFamilies(s: AuditStatus): Family[] {
  const gauge = (name: string, help: string, value: number): Family => ({ name, help, type: "gauge", samples: [{ labels: {}, value }] });
  return [
    gauge("relay_audit_entries", "Entries in the audit trail.", s.head.seq),
    gauge("relay_audit_archive_lag_entries", "Audit entries not yet archived to R2 (the open day's included).", s.head.seq - s.archive.through.seq),
    gauge(
      "relay_audit_archive_halted",
      "1 when archiving the audit trail stopped (an object with other bytes under a segment's key, an entry that does not verify).",
      s.archive.halted ? 1 : 0,
    ),
    gauge("relay_audit_chain_broken", "1 when the latest verification of the stored audit trail found a broken entry.", s.verified?.broken ? 1 : 0),
  ];
}

/** An entry as the API answers it. */
export function entryJson(e: AuditLine) {
  const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));
  return {
    seq: e.seq,
    at: new Date(e.at).toISOString(),
    actor: e.actor,
    role: e.role,
    via: e.via,
    action: e.action,
    object: parse(e.object) as Record<string, string> | null,
    reason: e.reason,
    requestId: e.requestId,
    address: e.address,
    before: parse(e.before),
    after: parse(e.after),
    prevHash: e.prevHash,
    entryHash: e.entryHash,
  };
}

/** The trail's state as the API answers it. */
export function statusJson(s: AuditStatus) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    head: s.head,
    archive: { through: s.archive.through, segments: s.archive.segments, lastArchivedAt: iso(s.archive.lastArchivedAt), halted: s.archive.halted },
    verified: s.verified && { through: s.verified.through, broken: s.verified.broken, checkedAt: iso(s.verified.checkedAt)! },
  };
}
