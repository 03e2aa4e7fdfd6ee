import { z } from "zod";
import { alertingSchema, CONDITIONS, SEVERITIES } from "../../config/alerting";
import { fieldErrorSchema } from "../../config/schemas";
import { MAX_ISSUES_LISTED } from "../../alerts/types";
import { isoTime } from "./shared.schemas";

/** Requests and answers of `/admin/issues` and `/admin/alerting` (routes/issues.ts); the dashboard parses its filters with `issueListQuery` too. */

const ISSUE_STATES = ["open", "acknowledged", "resolved"] as const;

/** `GET /admin/issues` query. */
export const issueListQuery = z.strictObject({
  state: z.enum(ISSUE_STATES).optional(),
  severity: z.enum(SEVERITIES).optional(),
  object: z
    .string()
    .regex(/^(source|target|channel):[a-z0-9][a-z0-9_-]{0,63}$/, "must be source:<id>, target:<id> or channel:<id>")
    .optional()
    .meta({ description: "the issue's object, e.g. target:edc" }),
  limit: z.coerce.number().int().min(1).max(MAX_ISSUES_LISTED).default(100),
});

/** `:id` of an issue path. */
export const issueParam = z.object({ id: z.string().regex(/^issue-[1-9][0-9]{0,15}$/, "must be an issue id, e.g. issue-12") });

/** `POST /admin/issues/:id/acknowledge` body. */
export const acknowledgeBody = z.strictObject({ note: z.string().min(1).max(1000).optional().meta({ description: "what is being done about it" }) });

/** An issue, as the API and notifications show it. */
export const issueSchema = z.object({
  issueId: z.string(),
  condition: z.enum(CONDITIONS as [string, ...string[]]),
  severity: z.enum(SEVERITIES),
  object: z.union([z.object({ source: z.string() }), z.object({ target: z.string() }), z.object({ channel: z.string() })]),
  summary: z.string(),
  firstSeenAt: isoTime,
  lastSeenAt: isoTime,
  count: z.number().int().meta({ description: "how often the condition was reported (events) or opened (states)" }),
  url: z.string().meta({ description: "the dashboard page that explains it (absolute when RELAY_PUBLIC_URL is set)" }),
  state: z.enum(ISSUE_STATES),
  acknowledgedBy: z.string().optional(),
  acknowledgedAt: isoTime.optional(),
  note: z.string().optional(),
  resolvedBy: z.string().optional().meta({ description: "an actor id, or system when the condition cleared" }),
  resolvedAt: isoTime.optional(),
});

/** What `GET /admin/alerting` answers: the document that applies, whether one is stored, and its errors when the stored one is invalid. */
export const alertingAnswerSchema = z.object({
  stored: z.boolean(),
  valid: z.boolean(),
  config: alertingSchema.meta({ description: "the document that applies (the defaults when none is stored or it is invalid)" }),
  errors: z.array(fieldErrorSchema).optional(),
});
