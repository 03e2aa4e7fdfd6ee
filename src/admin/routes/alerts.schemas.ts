import { z } from "zod";
import { alertChannelSchema } from "../../config/alert-schema";
import { fieldErrorSchema } from "../../config/schemas";

/** Request and answer schemas of `/admin/alerts` (alert channels). */

/** A stored channel: valid with its document, or invalid with its errors. */
export const storedChannelSchema = z.object({
  id: z.string(),
  valid: z.boolean(),
  config: alertChannelSchema.optional(),
  errors: z.array(fieldErrorSchema).optional(),
});

export const channelListSchema = z.object({ items: z.array(storedChannelSchema) });

/** The answer of `POST /admin/alerts/:id/test`. */
export const testSentSchema = z.object({
  channel: z.string(),
  notificationId: z.string().meta({ description: "the test notification's webhook-id, as the channel receives it" }),
  enqueued: z.boolean(),
});
