import { Hono } from "hono";
import { z } from "zod";
import { idSchema } from "../../config/schemas";
import { configExists } from "../../config/store";
import type { AppEnv } from "../../env";
import { toBase64 } from "../../lib/crypto";
import { errorResponse } from "../../lib/errors";
import type { DeliveryRecord } from "../../ledger/queries";
import { describeAdmin, errorBodySchema } from "../openapi";
import {
  deliveryDetailSchema,
  deliveryIdParam,
  deliveryListQuery,
  deliverySchema,
  handshakesQuery,
  handshakesSchema,
  replayOneBody,
  replayOneSchema,
} from "../schemas";
import { getDeliveryDetail, listDeliveries } from "../service/deliveries";
import { replayDelivery } from "../service/replay";
import { ledgerOf } from "../service/stubs";
import { jsonBody, valid } from "../validation";

/** Admin routes over the ledgers: deliveries, detail, replay of one, handshakes. Mounted under /admin. */
export const deliveryRoutes = new Hono<AppEnv>();

const sourceParam = z.object({ id: idSchema });
const deliveryParams = z.object({ source: idSchema, id: deliveryIdParam });

deliveryRoutes.get(
  "/deliveries",
  describeAdmin({
    tag: "deliveries",
    summary: "List deliveries across sources, newest first",
    responses: {
      200: {
        schema: z.object({ items: z.array(deliverySchema), next: z.string().nullable() }),
        description: "a page; pass `next` as `cursor` for the following one",
      },
      400: { schema: errorBodySchema, description: "invalid filter" },
    },
  }),
  valid("query", deliveryListQuery),
  async (c) => {
    const q = c.req.valid("query");
    const page = await listDeliveries(c.env, { ...q, attention: q.attention === "true" });
    if (!page.ok) return errorResponse(c, 400, "bad_request", "Invalid cursor.", { fields: [{ path: "cursor", message: "is not a cursor from this API" }] });
    return c.json({ items: page.items.map(withTimes), next: page.next });
  },
);

deliveryRoutes.get(
  "/deliveries/:source/:id",
  describeAdmin({
    tag: "deliveries",
    summary: "One delivery: record, redacted headers, body, envelope, and each target's dispatch and attempts",
    responses: { 200: { schema: deliveryDetailSchema, description: "the delivery" }, 404: { schema: errorBodySchema, description: "no such delivery" } },
  }),
  valid("param", deliveryParams),
  async (c) => {
    const { source, id } = c.req.valid("param");
    const detail = await getDeliveryDetail(c.env, source, id);
    if (!detail) return errorResponse(c, 404, "not_found", "No such delivery.");
    const { body, ...rest } = detail;
    return c.json({ ...withTimes(rest), body: { text: new TextDecoder().decode(body), base64: toBase64(body) } });
  },
);

deliveryRoutes.post(
  "/deliveries/:source/:id/replay",
  describeAdmin({
    tag: "replay",
    summary: "Send one delivery again to every target that has it, or to one",
    responses: {
      200: { schema: replayOneSchema, description: "per target: whether it was put back in the queue (a pending one is left alone)" },
      404: { schema: errorBodySchema, description: "no target has this delivery" },
      409: { schema: errorBodySchema, description: "its body was pruned and the archive cannot give it back (the message says why)" },
    },
  }),
  valid("param", deliveryParams),
  jsonBody(),
  valid("json", replayOneBody),
  async (c) => {
    const { source, id } = c.req.valid("param");
    const { target } = c.req.valid("json");
    const outcome = await replayDelivery(c.env, source, id, target);
    if (!outcome.ok)
      return outcome.error.error === "archive_missing"
        ? errorResponse(c, 409, "conflict", outcome.error.message)
        : errorResponse(c, 404, "not_found", outcome.error.message);
    return c.json({ source, deliveryId: id, targets: outcome.value.targets });
  },
);

deliveryRoutes.get(
  "/sources/:id/handshakes",
  describeAdmin({
    tag: "sources",
    summary: "Recent validation handshakes (audit log, newest 10,000 kept), and how many older ones were dropped",
    responses: { 200: { schema: handshakesSchema, description: "newest first" }, 404: { schema: errorBodySchema, description: "no such source" } },
  }),
  valid("param", sourceParam),
  valid("query", handshakesQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "source", id))) return errorResponse(c, 404, "not_found", "No such source.");
    const { items, dropped } = await ledgerOf(c.env, id).listHandshakes(c.req.valid("query").limit);
    return c.json({ items: items.map((h) => ({ ...h, receivedAt: new Date(h.receivedAt).toISOString() })), dropped });
  },
);

/** A delivery record with its times as ISO strings, as the API answers. */
function withTimes<T extends Pick<DeliveryRecord, "receivedAt" | "lastSeenAt" | "bodyPrunedAt">>(r: T) {
  return {
    ...r,
    receivedAt: new Date(r.receivedAt).toISOString(),
    lastSeenAt: new Date(r.lastSeenAt).toISOString(),
    bodyPrunedAt: r.bodyPrunedAt === null ? null : new Date(r.bodyPrunedAt).toISOString(),
  };
}
