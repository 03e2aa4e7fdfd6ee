/**
 * Who is acting, and what they may do. Set on `c.var.actor` by the admin authentication middleware
 * (src/middleware/admin-auth.ts) for every request under /admin; read by the role guard
 * (src/admin/authz.ts) and the audit trail (src/audit/).
 */

/** Roles, weakest first: each role may do everything the ones before it may. */
export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** The caller of an admin request. */
export interface Actor {
  /** `alice@site.org` (Access), `service:<common_name>` (Access service token), `token:<name>` (API token), `admin-token` (break-glass). */
  id: string;
  role: Role;
  /** The door used: the JSON API or the dashboard. */
  via: "api" | "dashboard";
  /** The client's address (`cf-connecting-ip`), when known. */
  address: string | null;
}

/** True when `have` is at least `need`. */
export const roleAllows = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need);
