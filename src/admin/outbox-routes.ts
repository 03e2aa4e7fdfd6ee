import { type Context, Hono } from "hono";
import { z } from "zod";
import { idSchema, toFieldErrors } from "../config/schemas";
import { configExists, listConfigs } from "../config/store";
import type { AppEnv, Bindings } from "../env";
import { errorResponse } from "../lib/errors";
import { MAX_LIST, MAX_REPLAY } from "../outbox/outbox";
import { describeAdmin, errorBodySchema } from "./openapi";

/** Admin routes of the fan-out engine (replay, dead letters, health, resume); mounted under /admin. */
export const outboxAdmin = new Hono<AppEnv>();

const outboxOf = (env: Bindings, target: string) => env.OUTBOX.get(env.OUTBOX.idFromName(target));

/** ISO 8601 time with offset, as epoch ms. */
const time = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const deliveryId = z.string().min(1).max(256);

const replayOneBody = z.strictObject({ target: idSchema.optional() });
const replayBody = z.strictObject({
  source: idSchema.optional(),
  target: idSchema.optional(),
  state: z.enum(["dead", "delivered"]).default("dead"),
  from: time.optional(),
  to: time.optional(),
  limit: z.number().int().min(1).max(MAX_REPLAY).default(100),
});
const deadQuery = z.strictObject({
  source: idSchema.optional(),
  from: time.optional(),
  to: time.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST).default(50),
  cursor: z
    .string()
    .regex(/^\d{1,15}$/, "is not a cursor from this API")
    .optional(),
});

/** Parses an optional JSON body against `schema`; a 400 response with field errors when it does not fit. */
async function parseBody<T extends z.ZodType>(c: Context<AppEnv>, schema: T): Promise<{ ok: true; value: z.infer<T> } | { ok: false; response: Response }> {
  const text = await c.req.text();
  let raw: unknown = {};
  if (text.trim() !== "") {
    try {
      raw = JSON.parse(text);
    } catch {
      return {
        ok: false,
        response: errorResponse(c, 400, "bad_request", "The body is not valid JSON.", { fields: [{ path: "(body)", message: "is not valid JSON" }] }),
      };
    }
  }
  return validate(c, schema, raw, "Invalid request body.");
}

function validate<T extends z.ZodType>(
  c: Context<AppEnv>,
  schema: T,
  raw: unknown,
  message: string,
): { ok: true; value: z.infer<T> } | { ok: false; response: Response } {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, response: errorResponse(c, 400, "bad_request", message, { fields: toFieldErrors(parsed.error) }) };
}

/** The target ids to act on: the one named (when its document exists), else every target document (valid or not). */
async function targetIds(env: Bindings, target: string | undefined): Promise<string[]> {
  if (target) return (await configExists(env.CONFIG, "target", target)) ? [target] : [];
  return (await listConfigs(env.CONFIG, "target")).map((t) => t.id);
}

/** A target id from the path whose document exists, or the 400/404 response (KV first: an unknown id never creates an outbox). */
async function knownTarget(c: Context<AppEnv>): Promise<{ ok: true; value: string } | { ok: false; response: Response }> {
  const id = validate(c, idSchema, c.req.param("id"), "Invalid target id.");
  if (!id.ok) return id;
  if (!(await configExists(c.env.CONFIG, "target", id.value))) return { ok: false, response: errorResponse(c, 404, "not_found", `No target "${id.value}".`) };
  return id;
}

outboxAdmin.post(
  "/deliveries/:source/:id/replay",
  describeAdmin({
    tag: "replay",
    summary: "Send one delivery again to every target that has it, or to one",
    body: replayOneBody,
    responses: {
      200: { description: "per target: whether it was put back in the queue (a pending one is left alone)" },
      404: { schema: errorBodySchema, description: "no target has this delivery" },
    },
  }),
  async (c) => {
    const params = validate(c, z.object({ source: idSchema, id: deliveryId }), c.req.param(), "Invalid path.");
    if (!params.ok) return params.response;
    const body = await parseBody(c, replayOneBody);
    if (!body.ok) return body.response;
    const { source, id } = params.value;
    const ids = await targetIds(c.env, body.value.target);
    const results = await Promise.all(ids.map(async (target) => ({ target, ...(await outboxOf(c.env, target).replay(source, id)) })));
    const found = results.filter((r) => r.found).map(({ target, replayed }) => ({ target, replayed }));
    if (found.length === 0)
      return errorResponse(c, 404, "not_found", body.value.target ? "That target never had this delivery." : "No target has this delivery.");
    return c.json({ source, deliveryId: id, targets: found });
  },
);

outboxAdmin.post(
  "/replay",
  describeAdmin({
    tag: "replay",
    summary: "Bulk replay by filter (dead by default), bounded by limit",
    body: replayBody,
    responses: { 200: { description: "{ replayed, more, targets }" }, 400: { schema: errorBodySchema, description: "invalid filter" } },
  }),
  async (c) => {
    const body = await parseBody(c, replayBody);
    if (!body.ok) return body.response;
    const { target, limit, ...filter } = body.value;
    // One budget for all targets, spent target by target, so a call never replays more than `limit`.
    let budget = limit;
    const ids = await targetIds(c.env, target);
    const targets: { target: string; replayed: number; remaining: number }[] = [];
    let visited = 0;
    for (const id of ids) {
      if (budget === 0) break;
      const r = await outboxOf(c.env, id).replayWhere({ ...filter, limit: budget });
      visited++;
      budget -= r.replayed;
      if (r.replayed > 0 || r.remaining > 0) targets.push({ target: id, ...r });
    }
    const replayed = limit - budget;
    const more = visited < ids.length || targets.some((t) => t.remaining > 0);
    return c.json({ replayed, more, targets });
  },
);

outboxAdmin.get(
  "/targets/:id/dead",
  describeAdmin({
    tag: "targets",
    summary: "Dead letters of a target, newest first",
    query: deadQuery,
    responses: { 200: { description: "{ target, items, next }" }, 400: { schema: errorBodySchema, description: "invalid query" } },
  }),
  async (c) => {
    const id = await knownTarget(c);
    if (!id.ok) return id.response;
    const q = validate(c, deadQuery, c.req.query(), "Invalid query.");
    if (!q.ok) return q.response;
    const page = await outboxOf(c.env, id.value).list({ ...q.value, state: "dead" });
    return c.json({ target: id.value, items: page.items, next: page.cursor });
  },
);

outboxAdmin.get(
  "/targets/:id/health",
  describeAdmin({
    tag: "targets",
    summary: "Backlog, dead and held counts, breaker, last error and success of a target",
    responses: { 200: { description: "the health report" } },
  }),
  async (c) => {
    const id = await knownTarget(c);
    if (!id.ok) return id.response;
    return c.json(await outboxOf(c.env, id.value).health());
  },
);

outboxAdmin.post(
  "/targets/:id/resume",
  describeAdmin({
    tag: "targets",
    summary: "Resume a held target (after a 410 or a fix): held deliveries go back to pending",
    responses: { 200: { description: "{ target, resumed }" } },
  }),
  async (c) => {
    const id = await knownTarget(c);
    if (!id.ok) return id.response;
    return c.json({ target: id.value, ...(await outboxOf(c.env, id.value).resume()) });
  },
);
