// Loaded by the Worker and by Node (scripts/verify-archive.ts): explicit extensions, no Workers types.
import { sha256Hex } from "./crypto.ts";

/**
 * A hash chain's link, shared by the ledger (ledger/chain.ts) and the audit trail (audit/format.ts):
 * SHA-256 (hex) over the JSON array of a version tag (when the chain has one), the previous link
 * and the record's immutable fields, in a fixed order. JSON keeps strings, numbers, booleans and
 * null apart, so no two different field lists hash the same text.
 */

/** prev_hash of a chain's first record. */
export const GENESIS = "0".repeat(64);

/** The link over `fields` (the previous link among them). */
export function chainLink(fields: readonly unknown[]): string {
  return sha256Hex(JSON.stringify(fields));
}
