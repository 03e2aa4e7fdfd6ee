import type { Context } from "hono";
import { audit } from "../../audit/audit";
import type { AppEnv } from "../../env";
import { loadOperators, type Operators, saveOperators } from "../identity/operators";

/** Changes of the roles document, one path for `PUT /admin/operators` and the dashboard's People page. */

/**
 * Replaces the roles document (already validated with operatorsSchema) as the request's caller:
 * records `operators.put` with the stored document before and `doc` after, then saves. `reason`
 * as audit() takes it (undefined: the X-Audit-Reason header); with `reasonRequired`, no reason
 * refuses before anything is recorded or saved.
 */
export async function replaceOperators<E extends AppEnv>(
  c: Context<E>,
  doc: Operators,
  why: { reason?: string | null; reasonRequired?: string } = {},
): Promise<void> {
  const before = await loadOperators(c.env, 0);
  await audit(c, { action: "operators.put", object: { document: "operators" }, before, after: doc, ...why });
  await saveOperators(c.env, doc);
}
