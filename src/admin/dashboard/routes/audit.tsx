import { Hono } from "hono";
import type { Context } from "hono";
import { trailOf } from "../../../audit/audit";
import type { AuditLine } from "../../../audit/format";
import { roleAllows } from "../../../lib/actor";
import { type AdminEnv, requireAdminPage } from "../../../middleware/admin-auth";
import { auditListQuery } from "../../routes/audit.schemas";
import { issuesToFields } from "../../validation";
import { utcInputToIso } from "../format";
import { type AuditFilters, AuditPage } from "../pages/audit";
import { PAGE_SIZE, render } from "../render";
import { pageRole } from "../roles";

/** `/admin/ui/audit`: the audit trail with filters, each entry's before/after, and the chain's state (operator and up: docs/audit.md). */
export const audit = new Hono<AdminEnv>();

audit.get("/", requireAdminPage, pageRole("operator"), async (c) => {
  const q = c.req.query();
  const filters: AuditFilters = {
    actor: (q.actor ?? "").trim().slice(0, 320),
    action: (q.action ?? "").trim().slice(0, 64),
    object: (q.object ?? "").trim().slice(0, 300),
    from: utcInputToIso(q.from),
    to: utcInputToIso(q.to),
  };
  // The same query rules as GET /admin/audit.
  const query = auditListQuery.safeParse({
    actor: filters.actor || undefined,
    action: filters.action || undefined,
    object: filters.object || undefined,
    from: filters.from ?? undefined,
    to: filters.to ?? undefined,
    cursor: q.cursor,
    limit: PAGE_SIZE,
  });
  const trail = trailOf(c.env);
  const status = await trail.verify();
  let listing: { items: AuditLine[]; next: string | null; error: string | null } = { items: [], next: null, error: null };
  if (!query.success)
    listing.error = `Invalid filter. ${issuesToFields(query.error.issues)
      .map((f) => `${f.path} ${f.message}`)
      .join("; ")}`;
  else listing = { ...(await trail.list(query.data)), error: null };
  return render(c, (page) => <AuditPage page={page} filters={filters} items={listing.items} next={listing.next} error={listing.error} status={status} />);
});

/** Entries of a source, target or delivery page: the newest ones concerning `object`, for operators and up (null for the others: the card is not shown). */
export async function entriesAbout(c: Context<AdminEnv>, object: string, limit = 10): Promise<AuditLine[] | null> {
  const actor = c.var.actor;
  if (!actor || !roleAllows(actor.role, "operator")) return null;
  return (await trailOf(c.env).list({ object, limit })).items;
}
