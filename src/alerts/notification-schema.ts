import { z } from "zod";

/**
 * The body a webhook alert channel receives (Standard Webhooks: `webhook-id` is the issue change's
 * id, stable across retries). Published as docs/schemas/alert-notification.schema.json, generated
 * from this schema (`node scripts/alert-schema.ts`; a test checks the two agree). Imports only zod,
 * so the script can load it.
 */
export const webhookNotificationSchema = z
  .strictObject({
    type: z.enum(["issue.opened", "issue.acknowledged", "issue.resolved"]).meta({ description: "what happened to the issue" }),
    timestamp: z.iso.datetime().meta({ description: "when it happened, UTC" }),
    data: z.strictObject({
      issueId: z.string().meta({ description: "the issue's id, the same in all its notifications" }),
      condition: z.string().meta({ description: "the condition, e.g. dead_letters, breaker_open, refused_deliveries" }),
      severity: z.enum(["critical", "warning", "info"]),
      object: z
        .union([z.strictObject({ source: z.string() }), z.strictObject({ target: z.string() }), z.strictObject({ channel: z.string() })])
        .meta({ description: "what the issue is about: one source, target or alert channel" }),
      summary: z.string().meta({ description: "one line, for a person" }),
      firstSeenAt: z.iso.datetime(),
      lastSeenAt: z.iso.datetime(),
      count: z.number().int().min(1).meta({ description: "times the condition was seen" }),
      url: z.string().meta({ description: "the relay's page that explains it (absolute when RELAY_PUBLIC_URL is set)" }),
    }),
  })
  .meta({
    title: "CentrePoint Edge Relay alert notification",
    description: "An issue state change, as a webhook alert channel receives it (signed per Standard Webhooks).",
  });

export type WebhookNotification = z.infer<typeof webhookNotificationSchema>;

/** The published JSON Schema (draft 2020-12) of the webhook body. */
export const webhookNotificationJsonSchema = (): unknown => z.toJSONSchema(webhookNotificationSchema, { target: "draft-2020-12" });
