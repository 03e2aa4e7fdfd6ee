import { z } from "zod";
import { isoTime, time } from "./shared.schemas";

/** Requests and answers of `/admin/audit` (routes/audit.ts); the dashboard's Audit page parses its filters with `auditListQuery` too. */

/** `GET /admin/audit` query. */
export const auditListQuery = z.strictObject({
  actor: z.string().min(1).max(320).optional().meta({ description: "exact actor: alice@site.org, token:<name>, admin-token, system" }),
  action: z
    .string()
    .regex(/^[a-z0-9_.*-]{1,64}$/, "is not an action name")
    .optional()
    .meta({ description: "exact action (`source.put`), or a prefix ending in `.*` (`delivery.*`)" }),
  object: z.string().min(1).max(300).optional().meta({ description: "an id the entry concerns (`s1`), or a typed one (`source:s1`)" }),
  from: time.optional().meta({ description: "first time (inclusive)" }),
  to: time.optional().meta({ description: "end time (exclusive)" }),
  cursor: z
    .string()
    .regex(/^\d{1,15}$/, "is not a cursor from this API")
    .transform(Number)
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

/** `GET /admin/audit/export` query. */
export const auditExportQuery = z.strictObject({
  from: time.optional().meta({ description: "first time (inclusive); the trail's start without it" }),
  to: time.optional().meta({ description: "end time (exclusive); the newest entry without it" }),
});

/** One entry as the API shows it: `at` ISO 8601, object/before/after parsed. */
export const auditEntrySchema = z.object({
  seq: z.number().int(),
  at: isoTime,
  actor: z.string(),
  role: z.string().meta({ description: "viewer, operator or admin; system for the relay itself; none for a refused sign-in" }),
  via: z.enum(["api", "dashboard", "cron", "system"]),
  action: z.string(),
  object: z.record(z.string(), z.string()).nullable(),
  reason: z.string().nullable(),
  requestId: z.string().nullable(),
  address: z.string().nullable(),
  before: z.unknown().meta({ description: "a configuration document before the change (secret names only), or null" }),
  after: z.unknown().meta({ description: "the document after the change, or the action's parameters, or null" }),
  prevHash: z.string(),
  entryHash: z.string(),
});

/** `GET /admin/audit`. */
export const auditPageSchema = z.object({ items: z.array(auditEntrySchema), next: z.string().nullable() });

const point = z.object({ seq: z.number().int(), hash: z.string() });

/** `GET /admin/audit/status`. */
export const auditStatusSchema = z.object({
  head: point,
  archive: z.object({ through: point, segments: z.number().int(), lastArchivedAt: isoTime.nullable(), halted: z.string().nullable() }),
  verified: z.object({ through: point, broken: z.object({ seq: z.number().int(), reason: z.string() }).nullable(), checkedAt: isoTime }).nullable(),
});
