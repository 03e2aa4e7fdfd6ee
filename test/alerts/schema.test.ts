import { describe, expect, it } from "vitest";
import published from "../../docs/schemas/alert-notification.schema.json";
import { webhookNotification } from "../../src/alerts/messages";
import { webhookNotificationJsonSchema, webhookNotificationSchema } from "../../src/alerts/notification-schema";
import { issueChange } from "../support/channels";

describe("the published JSON Schema of webhook alert notifications", () => {
  it("is the one generated from the schema the relay checks (regenerate: node scripts/alert-schema.ts)", () => {
    expect(published).toEqual(webhookNotificationJsonSchema());
  });

  it.each(["issue.opened", "issue.acknowledged", "issue.resolved"] as const)("describes the %s body the relay sends", (type) => {
    for (const object of [{ source: "study-42" }, { target: "edc" }, { channel: "ops" }]) {
      const body = webhookNotification(issueChange({ type }, { object }), "https://relay.example.org");
      expect(webhookNotificationSchema.safeParse(JSON.parse(JSON.stringify(body))).error).toBeUndefined();
    }
  });

  it("refuses a body with fields it does not document, or without the issue's id", () => {
    const body = webhookNotification(issueChange(), "");
    expect(webhookNotificationSchema.safeParse({ ...body, data: { ...body.data, state: "open" } }).success).toBe(false);
    const { issueId: _, ...withoutId } = body.data;
    expect(webhookNotificationSchema.safeParse({ ...body, data: withoutId }).success).toBe(false);
  });
});
