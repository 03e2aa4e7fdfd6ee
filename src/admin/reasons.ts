import type { AuditInput } from "../audit/audit";
import type { ConfigType } from "../config/store";

/**
 * Which configuration changes need a reason (issue 18; docs/audit.md): deleting a document, and
 * changing an existing source's `retention` (what the relay keeps, and for how long). The audit
 * entry of a change carries the document before and after (secret names only: values never are in KV).
 */
export function documentChange(type: ConfigType, change: { before: unknown; after: unknown }): Pick<AuditInput, "before" | "after" | "reasonRequired"> {
  const { before, after } = change;
  let reasonRequired: string | undefined;
  if (after === null) reasonRequired = `Deleting a ${type} needs a reason`;
  else if (type === "source" && before !== null && JSON.stringify(retentionOf(before)) !== JSON.stringify(retentionOf(after)))
    reasonRequired = "Changing a source's retention needs a reason";
  return { before, after, reasonRequired };
}

function retentionOf(doc: unknown): unknown {
  return typeof doc === "object" && doc !== null && "retention" in doc ? (doc as { retention: unknown }).retention : null;
}
