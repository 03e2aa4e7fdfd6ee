import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../env";
import { toBase64 } from "../../lib/crypto";
import { errorResponse } from "../../lib/errors";
import type { DeliveryRecord } from "../../ledger/queries";
import { audit, ids } from "../../audit/audit";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { getDeliveryDetail, listDeliveries } from "../service/deliveries";
import { releaseEnrichment, retryEnrichment } from "../service/pull";
import { replayDelivery } from "../service/replay";
import { jsonBody, valid } from "../validation";
import {
  deliveryDetailSchema,
  deliveryTargetAnswer,
  deliveryListQuery,
  deliverySchema,
  DELIVERY_TIMES,
  pullAnswer,
  releaseEnrichmentSchema,
  replayOneBody,
  replayOneSchema,
  retryEnrichmentSchema,
} from "./deliveries.schemas";
import { refuse } from "./refuse";
import { deliveryParams, iso, isoTimes } from "./shared.schemas";

/** `/admin/deliveries`: deliveries across the ledgers, one delivery's detail, its replay and its enrichment actions (docs/pull.md). */
export const deliveries = new Hono<AppEnv>();

const notFound = { 404: { schema: errorBodySchema, description: "no such source or delivery" } };

deliveries.get(
  "/",
  requireRole("viewer"),
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

deliveries.get(
  "/:source/:id",
  requireRole("operator"),
  describeAdmin({
    tag: "deliveries",
    summary:
      "One delivery: record, redacted headers, body, envelope, and each target's dispatch and attempts (operator and up: the body may hold patient-related data; each read is a `delivery.read` audit entry)",
    responses: { 200: { schema: deliveryDetailSchema, description: "the delivery" }, 404: { schema: errorBodySchema, description: "no such delivery" } },
  }),
  valid("param", deliveryParams),
  async (c) => {
    const { source, id } = c.req.valid("param");
    const detail = await getDeliveryDetail(c.env, source, id);
    if (!detail) return errorResponse(c, 404, "not_found", "No such delivery.");
    await audit(c, { action: "delivery.read", object: { source, delivery: id } });
    const { body, targets, pull, ...rest } = detail;
    return c.json({
      ...withTimes(rest),
      body: { text: new TextDecoder().decode(body), base64: toBase64(body) },
      targets: targets.map(deliveryTargetAnswer),
      pull: pullAnswer(pull),
    });
  },
);

deliveries.post(
  "/:source/:id/replay",
  requireRole("operator"),
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
    await audit(c, { action: "delivery.replay", object: ids({ source, delivery: id, target }) });
    const outcome = await replayDelivery(c.env, source, id, target);
    if (!outcome.ok)
      return outcome.error.error === "archive_missing"
        ? errorResponse(c, 409, "conflict", outcome.error.message)
        : errorResponse(c, 404, "not_found", outcome.error.message);
    return c.json({ source, deliveryId: id, targets: outcome.value.targets });
  },
);

deliveries.post(
  "/:source/:id/enrichment/retry",
  requireRole("operator"),
  describeAdmin({
    tag: "enrichment",
    summary:
      "Look the delivery's enrichment up again from scratch; targets still waiting or held get the new result, events already handed to a target keep what they were sent with",
    responses: {
      200: { schema: retryEnrichmentSchema, description: "the lookup is scheduled (now)" },
      409: { schema: errorBodySchema, description: "no enrichment was planned for this delivery, or it settled more than 30 days ago" },
      ...notFound,
    },
  }),
  valid("param", deliveryParams),
  async (c) => {
    const { source, id } = c.req.valid("param");
    await audit(c, { action: "delivery.enrichment-retry", object: { source, delivery: id } });
    const job = await retryEnrichment(c.env, source, id);
    if (!job.ok) return refuse(c, job.error);
    return c.json({ source, deliveryId: id, state: "pending" as const, facts: job.value.facts, nextAt: iso(job.value.nextAt) });
  },
);

deliveries.post(
  "/:source/:id/enrichment/release",
  requireRole("operator"),
  describeAdmin({
    tag: "enrichment",
    summary: "Send the delivery now to every target waiting for (or held until) its enrichment, with whatever was found; needs a reason (X-Audit-Reason)",
    responses: {
      200: { schema: releaseEnrichmentSchema, description: "how many target hand-offs were released (0: none was waiting)" },
      400: { schema: errorBodySchema, description: "reason_required: no X-Audit-Reason header" },
      ...notFound,
    },
  }),
  valid("param", deliveryParams),
  async (c) => {
    const { source, id } = c.req.valid("param");
    await audit(c, { action: "delivery.release", object: { source, delivery: id }, reasonRequired: "Releasing held events needs a reason" });
    const released = await releaseEnrichment(c.env, source, id);
    return released.ok ? c.json({ source, deliveryId: id, released: released.value.released }) : refuse(c, released.error);
  },
);

/** A delivery record with its times as ISO 8601, as the API answers. */
function withTimes<T extends Pick<DeliveryRecord, (typeof DELIVERY_TIMES)[number]>>(r: T) {
  return isoTimes(r, DELIVERY_TIMES);
}
