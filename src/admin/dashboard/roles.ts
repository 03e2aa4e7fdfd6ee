import type { Context } from "hono";
import { cleanReason } from "../../audit/audit";
import type { Role } from "../../lib/actor";
import type { AdminEnv } from "../../middleware/admin-auth";
import { requireRole } from "../authz";
import { renderError } from "./render";

/** The dashboard's role guard: requireRole with the refusal as a page. Put it after requireAdminPage (or formPost), which names the caller. */
export const pageRole = (need: Role) => requireRole<AdminEnv>(need, (c, message) => renderError(c, 403, `Your role does not allow this. ${message}`));

/** The `reason` field of the submitted form, trimmed; null when empty. */
export async function formReason(c: Context<AdminEnv>): Promise<string | null> {
  const form = await c.req.parseBody();
  return cleanReason(typeof form.reason === "string" ? form.reason : null);
}
