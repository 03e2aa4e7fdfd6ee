import { Hono } from "hono";
import { z } from "zod";
import { idSchema } from "../../config/schemas";
import type { AppEnv } from "../../env";
import { describeAdmin, errorBodySchema } from "../openapi";
import {
  deliveryIdParam,
  downloadsQuery,
  downloadsSchema,
  rawRequestsQuery,
  rawRequestsSchema,
  releaseEnrichmentSchema,
  retryEnrichmentSchema,
} from "../schemas";
import { downloadsOfSource, rawRequestsOfSource, releaseEnrichment, retryEnrichment } from "../service/pull";
import { refuse } from "./reconcile";
import { valid } from "../validation";

/** Admin routes of the pull side (docs/pull.md): enrichment actions, raw-data requests, file downloads. Mounted under /admin. */
export const pullRoutes = new Hono<AppEnv>();

const sourceParam = z.object({ id: idSchema });
const deliveryParams = z.object({ source: idSchema, id: deliveryIdParam });
const notFound = { 404: { schema: errorBodySchema, description: "no such source or delivery" } };

pullRoutes.post(
  "/deliveries/:source/:id/enrichment/retry",
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
    const job = await retryEnrichment(c.env, source, id);
    if (!job.ok) return refuse(c, job.error);
    return c.json({ source, deliveryId: id, state: "pending" as const, facts: job.value.facts, nextAt: job.value.nextAt });
  },
);

pullRoutes.post(
  "/deliveries/:source/:id/enrichment/release",
  describeAdmin({
    tag: "enrichment",
    summary: "Send the delivery now to every target waiting for (or held until) its enrichment, with whatever was found",
    responses: { 200: { schema: releaseEnrichmentSchema, description: "how many target hand-offs were released (0: none was waiting)" }, ...notFound },
  }),
  valid("param", deliveryParams),
  async (c) => {
    const { source, id } = c.req.valid("param");
    const released = await releaseEnrichment(c.env, source, id);
    return released.ok ? c.json({ source, deliveryId: id, released: released.value.released }) : refuse(c, released.error);
  },
);

pullRoutes.get(
  "/sources/:id/raw-requests",
  describeAdmin({
    tag: "raw-data requests",
    summary: "The source's automatic raw-data requests (queued, active, finished, reported), newest first",
    responses: {
      200: { schema: rawRequestsSchema, description: "newest first" },
      400: { schema: errorBodySchema, description: "the source has no centrepoint block" },
      404: { schema: errorBodySchema, description: "no such source" },
    },
  }),
  valid("param", sourceParam),
  valid("query", rawRequestsQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    const items = await rawRequestsOfSource(c.env, id, c.req.valid("query"));
    return items.ok ? c.json({ source: id, items: items.value }) : refuse(c, items.error);
  },
);

pullRoutes.get(
  "/sources/:id/downloads",
  describeAdmin({
    tag: "raw-data requests",
    summary: "Downloads through the source's relay file links (the audit trail: target, file, time, address), newest first",
    responses: { 200: { schema: downloadsSchema, description: "newest first" }, 404: { schema: errorBodySchema, description: "no such source" } },
  }),
  valid("param", sourceParam),
  valid("query", downloadsQuery),
  async (c) => {
    const { id } = c.req.valid("param");
    const items = await downloadsOfSource(c.env, id, c.req.valid("query").limit);
    return items.ok ? c.json({ source: id, items: items.value }) : refuse(c, items.error);
  },
);
