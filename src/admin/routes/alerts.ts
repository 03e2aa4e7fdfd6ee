import { Hono } from "hono";
import { enqueueNotification } from "../../alerts/notify";
import { notificationItem } from "../../alerts/messages";
import type { IssueChange } from "../../alerts/types";
import { configExists, listConfigs, loadConfig } from "../../config/store";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import { channelOutboxName } from "../../outbox/types";
import { audit } from "../../audit/audit";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { documentChange } from "../reasons";
import { deleteDocument, saveDocument } from "../service/documents";
import { outboxOf } from "../service/stubs";
import { jsonBody, valid } from "../validation";
import { alertChannelSchema } from "../../config/alert-schema";
import { channelListSchema, storedChannelSchema, testSentSchema } from "./alerts.schemas";
import { idParam } from "./shared.schemas";
import { healthSchema } from "./targets.schemas";

/**
 * `/admin/alerts`: alert channel documents (`alert:<id>`: where issue notifications go), each
 * channel's outbox health, and a test notification through the same path as a real one.
 * Reads `viewer`, the test `operator`, documents `admin`; every change is audited before it happens.
 */
export const alerts = new Hono<AppEnv>();

const tag = "alerts";
const unknownChannel = { schema: errorBodySchema, description: "no such alert channel" };

alerts.get(
  "/",
  requireRole("viewer"),
  describeAdmin({
    tag,
    summary: "List alert channels, invalid stored documents included with their errors",
    responses: { 200: { schema: channelListSchema, description: "every channel" } },
  }),
  async (c) => c.json({ items: await listConfigs(c.env.CONFIG, "alert", 0) }),
);

alerts.get(
  "/:id",
  requireRole("viewer"),
  describeAdmin({
    tag,
    summary: "Read one alert channel",
    responses: { 200: { schema: storedChannelSchema, description: "the channel" }, 404: unknownChannel },
  }),
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    const loaded = await loadConfig(c.env.CONFIG, "alert", id, 0);
    if (loaded.state === "missing") return errorResponse(c, 404, "not_found", `No alert channel "${id}".`);
    if (loaded.state === "invalid") return c.json({ id, valid: false, errors: loaded.errors });
    return c.json({ id, valid: true, config: loaded.config });
  },
);

alerts.put(
  "/:id",
  requireRole("admin"),
  describeAdmin({
    tag,
    summary: "Create or replace an alert channel (webhook, slack or email, with its filters); defaults are filled in",
    responses: {
      200: { schema: storedChannelSchema, description: "replaced" },
      201: { schema: storedChannelSchema, description: "created" },
      400: { schema: errorBodySchema, description: "invalid document, with field-level errors" },
    },
  }),
  jsonBody("invalid_document"),
  valid("json", alertChannelSchema, "invalid_document"),
  async (c) => {
    const id = c.req.param("id") ?? "";
    // Every rule first (id, URL policy, secret roles), then the audit entry (before and after), then KV: a refused document is neither recorded nor stored.
    const saved = await saveDocument(c.env, "alert", id, await c.req.json(), "api", (change) =>
      audit(c, { action: "alert.put", object: { alert: id }, ...documentChange("alert", change) }),
    );
    if (!saved.ok) return errorResponse(c, 400, "invalid_document", "Invalid alert channel document.", { fields: saved.error });
    return c.json({ id, valid: true, config: saved.value.config }, saved.value.created ? 201 : 200);
  },
);

alerts.delete(
  "/:id",
  requireRole("admin"),
  describeAdmin({
    tag,
    summary: "Delete an alert channel; needs a reason (X-Audit-Reason). Its outbox keeps what it holds, held until a channel of that id exists again",
    responses: {
      204: { description: "deleted" },
      400: { schema: errorBodySchema, description: "reason_required: no X-Audit-Reason header" },
      404: unknownChannel,
    },
  }),
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    const deleted = await deleteDocument(c.env, "alert", id, (change) =>
      audit(c, { action: "alert.delete", object: { alert: id }, ...documentChange("alert", change) }),
    );
    if (!deleted) return errorResponse(c, 404, "not_found", `No alert channel "${id}".`);
    return c.body(null, 204);
  },
);

alerts.get(
  "/:id/health",
  requireRole("viewer"),
  describeAdmin({
    tag,
    summary: "The channel's outbox: pending, delivered and dead notifications, breaker, last error and success",
    responses: { 200: { schema: healthSchema, description: "the health report" }, 404: unknownChannel },
  }),
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await configExists(c.env.CONFIG, "alert", id))) return errorResponse(c, 404, "not_found", `No alert channel "${id}".`);
    return c.json(await outboxOf(c.env, channelOutboxName(id)).health());
  },
);

alerts.post(
  "/:id/test",
  requireRole("operator"),
  describeAdmin({
    tag,
    summary: "Send a test notification (an info issue.opened about this channel) through the channel's outbox, whatever its filters",
    responses: {
      202: { schema: testSentSchema, description: "enqueued; GET /admin/alerts/{id}/health shows its outcome" },
      404: unknownChannel,
      409: { schema: errorBodySchema, description: "the channel document is invalid" },
    },
  }),
  valid("param", idParam),
  async (c) => {
    const { id } = c.req.valid("param");
    const loaded = await loadConfig(c.env.CONFIG, "alert", id, 0);
    if (loaded.state === "missing") return errorResponse(c, 404, "not_found", `No alert channel "${id}".`);
    if (loaded.state === "invalid") return errorResponse(c, 409, "invalid_document", `Alert channel "${id}" is invalid; fix it first.`);
    const now = new Date(Date.now()).toISOString();
    const change: IssueChange = {
      id: `test_${crypto.randomUUID()}`,
      type: "issue.opened",
      timestamp: now,
      data: {
        issueId: "test",
        condition: "test",
        severity: "info",
        object: { channel: id },
        summary: `Test notification for alert channel ${id}`,
        firstSeenAt: now,
        lastSeenAt: now,
        count: 1,
        url: "/admin/ui/alerts",
        state: "open",
      },
    };
    await audit(c, { action: "alert.test", object: { alert: id, notification: change.id } });
    const { inserted } = await enqueueNotification(c.env, id, notificationItem(loaded.config, change, c.env.RELAY_PUBLIC_URL ?? ""));
    return c.json({ channel: id, notificationId: change.id, enqueued: inserted === 1 }, 202);
  },
);
