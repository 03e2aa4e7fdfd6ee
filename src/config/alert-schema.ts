import { z } from "zod";
import { envName, idSchema } from "./schemas";

/**
 * Alert channel documents (`alert:<id>`, issue 19 "Notifications"): where a person hears about an
 * issue. Like every document, validated on write and on read; secrets are named, never stored
 * (`signing.secretEnv`, `urlEnv`), under the same role rules as a target's (config/secrets.ts).
 */

/** Severities, weakest first: a channel's `severity` is the weakest it is told about. */
export const SEVERITIES = ["info", "warning", "critical"] as const;
export type ChannelSeverity = (typeof SEVERITIES)[number];

/** Condition names (`dead_letters`, `breaker_open`, ...) or `*`. */
const conditionName = z.string().regex(/^(\*|[a-z][a-z0-9_]{0,63})$/, 'must be a condition name such as "dead_letters", or "*"');

/** What an issue is about, as `<kind>:<id>` (`source:study-42`, `target:edc`, `channel:ops`), `<kind>:*`, or `*`. */
const objectRef = z
  .string()
  .max(80)
  .refine(
    (ref) => {
      if (ref === "*") return true;
      const m = /^(source|target|channel):(.*)$/.exec(ref);
      return m !== null && (m[2] === "*" || idSchema.safeParse(m[2]).success);
    },
    { message: 'must be "*", or "source:", "target:" or "channel:" followed by an id or "*"' },
  );

/** Which issues a channel hears about: all three must match. */
const filterFields = {
  /** The weakest severity sent (default: every severity). */
  severity: z.enum(SEVERITIES).default("info"),
  conditions: z.array(conditionName).min(1).max(32).default(["*"]),
  objects: z.array(objectRef).min(1).max(64).default(["*"]),
  description: z.string().max(500).optional(),
  enabled: z.boolean().default(true),
};

const email = z.email({ error: "must be an email address" }).max(254);

export const alertChannelSchema = z.discriminatedUnion("type", [
  /** Standard Webhooks–signed JSON (docs/schemas/alert-notification.schema.json). */
  z.strictObject({
    type: z.literal("webhook"),
    url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).max(2048),
    signing: z.strictObject({ secretEnv: envName }),
    ...filterFields,
  }),
  /** A Slack incoming webhook; its URL is a credential, so the document names the secret holding it. */
  z.strictObject({ type: z.literal("slack"), urlEnv: envName, ...filterFields }),
  /** Mail through the Worker's `send_email` binding (SEND_EMAIL). */
  z.strictObject({ type: z.literal("email"), to: z.array(email).min(1).max(20), from: email, ...filterFields }),
]);
export type AlertChannel = z.infer<typeof alertChannelSchema>;
