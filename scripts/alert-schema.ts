/**
 * Writes docs/schemas/alert-notification.schema.json from src/alerts/notification-schema.ts (the body webhook
 * alert channels receive). Run after changing that schema: `node scripts/alert-schema.ts`.
 */
import { writeFileSync } from "node:fs";
import { webhookNotificationJsonSchema } from "../src/alerts/notification-schema.ts";

const path = new URL("../docs/schemas/alert-notification.schema.json", import.meta.url);
writeFileSync(path, `${JSON.stringify(webhookNotificationJsonSchema(), null, 2)}\n`);
console.log(`wrote ${path.pathname}`);
