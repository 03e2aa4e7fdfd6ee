import { Hono } from "hono";
import { z } from "zod";
import { idSchema, toFieldErrors } from "../config/schemas";
import { configExists, listConfigs } from "../config/store";
import type { AppEnv, Bindings } from "../env";
import { toBase64 } from "../lib/crypto";
import { errorResponse } from "../lib/errors";
import type { DeliveryRecord } from "../ledger/ledger";
import { describeAdmin, errorBodySchema } from "./openapi";

const listQuery = z.strictObject({
  q: z.string().min(1).max(200).optional().meta({ description: "exact delivery id, subject, upload id, tracking id or subject identifier" }),
  source: idSchema.optional(),
  kind: z.string().max(64).optional(),
  subject: z.string().max(200).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  attention: z.enum(["true", "false"]).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

/** Cursor of the merged, newest-first list across sources: received time, then source and seq. */
interface Cursor {
  at: number;
  source: string;
  seq: number;
}

const ledgerOf = (env: Bindings, source: string) => env.LEDGER.get(env.LEDGER.idFromName(source));

/** Admin routes over the ledgers: deliveries, detail, integrity, handshakes. Mounted under /admin. */
export const deliveryAdmin = new Hono<AppEnv>();

const deliverySchema = z.object({
  source: z.string(),
  seq: z.number().int(),
  deliveryId: z.string(),
  idDerived: z.boolean(),
  event: z.string().nullable(),
  kind: z.string(),
  subject: z.string().nullable(),
  attention: z.string().nullable(),
  receivedAt: z.iso.datetime(),
  lastSeenAt: z.iso.datetime(),
  sourceIp: z.string().nullable(),
  headers: z.record(z.string(), z.string()),
  bodySha256: z.string(),
  bodySize: z.number().int(),
  recordHash: z.string(),
  duplicateCount: z.number().int(),
  provenance: z.enum(["webhook", "centrepoint-history"]),
  sameBodyAs: z.string().nullable().meta({ description: "an earlier delivery of this source with the same body under another id (a possible replay)" }),
});

deliveryAdmin.get(
  "/deliveries",
  describeAdmin({
    tag: "deliveries",
    summary: "List deliveries across sources, newest first",
    query: listQuery,
    responses: {
      200: {
        schema: z.object({ items: z.array(deliverySchema), next: z.string().nullable() }),
        description: "a page; pass `next` as `cursor` for the following one",
      },
      400: { schema: errorBodySchema, description: "invalid filter" },
    },
  }),
  async (c) => {
    const q = listQuery.safeParse(c.req.query());
    if (!q.success) return errorResponse(c, 400, "bad_request", "Invalid query.", { fields: toFieldErrors(q.error) });
    const { q: search, source, kind, subject, from, to, attention, limit } = q.data;
    const cursor = q.data.cursor === undefined ? undefined : decodeCursor(q.data.cursor);
    if (cursor === null)
      return errorResponse(c, 400, "bad_request", "Invalid cursor.", { fields: [{ path: "cursor", message: "is not a cursor from this API" }] });
    const sources = source ? [source] : (await listConfigs(c.env.CONFIG, "source")).map((s) => s.id);
    // Each ledger returns its newest `limit + 1` rows after the cursor; the merge keeps the newest
    // `limit` overall. Order: received time, then source, then seq, all descending.
    const perSource = await Promise.all(
      sources.map(async (s) => {
        const rows = await ledgerOf(c.env, s).list({
          q: search,
          kind,
          subject,
          from: from ? Date.parse(from) : undefined,
          to: to ? Date.parse(to) : undefined,
          attention: attention === "true",
          before: cursor ? { at: cursor.at, seq: s === cursor.source ? cursor.seq : s < cursor.source ? Number.MAX_SAFE_INTEGER : 0 } : undefined,
          limit: limit + 1,
        });
        return rows.map((r) => ({ source: s, ...r }));
      }),
    );
    const merged = perSource.flat().sort((a, b) => b.receivedAt - a.receivedAt || b.source.localeCompare(a.source) || b.seq - a.seq);
    const page = merged.slice(0, limit);
    const last = page[page.length - 1];
    const next = merged.length > limit && last ? encodeCursor({ at: last.receivedAt, source: last.source, seq: last.seq }) : null;
    return c.json({ items: page.map(withTimes), next });
  },
);

deliveryAdmin.get(
  "/deliveries/:source/:id",
  describeAdmin({
    tag: "deliveries",
    summary: "One delivery: record, redacted headers, body, envelope, and each target's state and attempts",
    responses: {
      200: {
        schema: deliverySchema.extend({ body: z.object({ text: z.string(), base64: z.string() }), envelope: z.unknown(), targets: z.array(z.unknown()) }),
        description: "the delivery",
      },
      404: { schema: errorBodySchema, description: "no such delivery" },
    },
  }),
  async (c) => {
    const { source, id } = c.req.param();
    if (!(await configExists(c.env.CONFIG, "source", source))) return errorResponse(c, 404, "not_found", "No such delivery.");
    const detail = await ledgerOf(c.env, source).get(id);
    if (!detail) return errorResponse(c, 404, "not_found", "No such delivery.");
    const { body, envelope, handoffs, ...record } = detail;
    const targets = await Promise.all(
      handoffs.map(async (h) => {
        const outbox = c.env.OUTBOX.get(c.env.OUTBOX.idFromName(h.targetId));
        const delivery = h.handedAt === null ? null : await outbox.getDelivery(source, id);
        return { target: h.targetId, handoff: h, delivery };
      }),
    );
    const text = new TextDecoder().decode(body);
    return c.json({
      source,
      ...withTimes(record),
      body: { text, base64: toBase64(body) },
      envelope: JSON.parse(envelope) as unknown,
      targets,
    });
  },
);

const integritySchema = z.object({
  source: z.string(),
  ok: z.boolean(),
  checked: z.number().int(),
  headHash: z.string(),
  firstBroken: z.object({ seq: z.number().int(), deliveryId: z.string(), reason: z.string() }).nullable(),
  checkedAt: z.iso.datetime(),
});

deliveryAdmin.get(
  "/sources/:id/integrity",
  describeAdmin({
    tag: "sources",
    summary: "Recompute the ledger's hash chain; name the first broken record",
    responses: { 200: { schema: integritySchema, description: "the report" }, 404: { schema: errorBodySchema, description: "no such source" } },
  }),
  async (c) => {
    if (!(await configExists(c.env.CONFIG, "source", c.req.param("id")))) return errorResponse(c, 404, "not_found", "No such source.");
    const report = await ledgerOf(c.env, c.req.param("id")).verifyIntegrity();
    return c.json({ source: c.req.param("id"), ...report, checkedAt: new Date(report.checkedAt).toISOString() });
  },
);

deliveryAdmin.get(
  "/sources/:id/handshakes",
  describeAdmin({
    tag: "sources",
    summary: "Recent validation handshakes (audit log, newest 10,000 kept), and how many older ones were dropped",
    responses: { 200: { description: "{ items (newest first), dropped }" }, 404: { schema: errorBodySchema, description: "no such source" } },
  }),
  async (c) => {
    if (!(await configExists(c.env.CONFIG, "source", c.req.param("id")))) return errorResponse(c, 404, "not_found", "No such source.");
    const { items, dropped } = await ledgerOf(c.env, c.req.param("id")).listHandshakes(Number(c.req.query("limit") ?? 50));
    return c.json({ items: items.map((h) => ({ ...h, receivedAt: new Date(h.receivedAt).toISOString() })), dropped });
  },
);

function withTimes<T extends Pick<DeliveryRecord, "receivedAt" | "lastSeenAt">>(r: T) {
  return { ...r, receivedAt: new Date(r.receivedAt).toISOString(), lastSeenAt: new Date(r.lastSeenAt).toISOString() };
}

function encodeCursor(c: Cursor): string {
  return btoa(JSON.stringify([c.at, c.source, c.seq])).replace(/=+$/, "");
}

function decodeCursor(text: string): Cursor | null {
  try {
    const [at, source, seq] = JSON.parse(atob(text)) as unknown[];
    if (typeof at === "number" && typeof source === "string" && typeof seq === "number") return { at, source, seq };
  } catch {
    /* fall through */
  }
  return null;
}
