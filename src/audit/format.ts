// Loaded by the Worker and by Node (scripts/verify-archive.ts): explicit extensions, no Workers types.
import { type Broken, type LineVerifier, parseChainLine, type Verified } from "../lib/archive-format.ts";
import { chainLink, GENESIS } from "../lib/chain.ts";

/**
 * The audit trail's entries as they are chained, archived and exported, pure (docs/audit.md).
 * An entry's link is SHA-256 (lib/chain.ts) over
 *
 *   ["audit/1", prevHash, seq, at, actor, role, via, action, object, reason, requestId, address, before, after]
 *
 * with `at` in epoch ms and `object`, `before` and `after` the stored JSON text (or null), exactly as
 * a line of a segment or an export carries them, so `npm run verify-archive` checks a line without
 * re-serializing anything.
 */

/** Names the format in every manifest of the audit trail's segments. */
export const AUDIT_ARCHIVE_FORMAT = "centrepoint-edge-relay.audit-archive/1";
/** The R2 prefix of the audit trail's segments (no source id can be this: ids have no `_`-led names). */
export const AUDIT_ARCHIVE_PREFIX = "_audit";
/** The only chain version of the trail so far. */
export const AUDIT_CHAIN_VERSION = 1;

/** Who acts through which door: people and tokens through the API or the dashboard, the relay itself from a cron or on its own. */
export type AuditVia = "api" | "dashboard" | "cron" | "system";

/** One entry as chained: every field the link covers. */
export interface AuditFields {
  prevHash: string;
  seq: number;
  /** When it was written, epoch ms. */
  at: number;
  /** A person (`alice@site.org`), `service:<name>`, `token:<name>`, `admin-token`, or `system`. */
  actor: string;
  /** The actor's role then (`viewer`, `operator`, `admin`), `system` for the relay itself, `none` for a refused sign-in. */
  role: string;
  via: AuditVia;
  /** `<object>.<verb>`, e.g. `source.put`. */
  action: string;
  /** JSON object of ids (`{"source":"s1"}`), or null. */
  object: string | null;
  reason: string | null;
  requestId: string | null;
  address: string | null;
  /** JSON of a configuration document before and after the change (secret names only), or null. */
  before: string | null;
  after: string | null;
}

/** An entry as a line of a segment or an export. */
export interface AuditLine extends AuditFields {
  chainVersion: number;
  entryHash: string;
}

/** The link of one entry. */
export function auditLink(f: AuditFields): string {
  return chainLink(["audit/1", f.prevHash, f.seq, f.at, f.actor, f.role, f.via, f.action, f.object, f.reason, f.requestId, f.address, f.before, f.after]);
}

/** An entry as one NDJSON line (with its newline). */
export function auditLineText(line: AuditLine): string {
  return `${JSON.stringify(line)}\n`;
}

const str = (v: unknown) => typeof v === "string";
const strOrNull = (v: unknown) => v === null || typeof v === "string";
const int = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v);
const LINE_FIELDS: Record<keyof AuditLine, (v: unknown) => boolean> = {
  seq: int,
  at: int,
  actor: str,
  role: str,
  via: (v) => v === "api" || v === "dashboard" || v === "cron" || v === "system",
  action: str,
  object: strOrNull,
  reason: strOrNull,
  requestId: strOrNull,
  address: strOrNull,
  before: strOrNull,
  after: strOrNull,
  chainVersion: int,
  prevHash: str,
  entryHash: str,
};

/** True when a parsed JSON line looks like an audit entry rather than a ledger record. */
export function isAuditLine(value: unknown): boolean {
  return typeof value === "object" && value !== null && "entryHash" in value && "action" in value;
}

/** Parses one line; the error names the field that is wrong. */
export function parseAuditLine(line: string): { ok: true; value: AuditLine } | { ok: false; error: string } {
  return parseChainLine<AuditLine>(line, LINE_FIELDS);
}

/** Why an entry does not verify after `expected` (the previous entry's seq + 1 and hash), or null. */
export function checkAuditLine(line: AuditLine, expected: { seq: number; prevHash: string }): string | null {
  if (line.seq !== expected.seq) return `entry ${expected.seq} is missing`;
  if (line.prevHash !== expected.prevHash) return "prevHash does not match the previous entry";
  if (line.chainVersion !== AUDIT_CHAIN_VERSION) return `unknown chain version ${line.chainVersion}`;
  return auditLink(line) === line.entryHash ? null : "entryHash does not match the entry's contents";
}

/**
 * A verifier of audit lines, fed one at a time. `after` is the previous entry's seq and hash; null
 * takes the first line's own link as the start (an export of a range).
 */
export function auditLineVerifier(after: { seq: number; hash: string } | null): LineVerifier {
  const verified: Verified = { records: 0, prunedBodies: 0, last: after ?? { seq: 0, hash: GENESIS }, chainVersions: new Set() };
  let prev = after;
  return {
    verified,
    push(text: string, at: string): Broken | null {
      const parsed = parseAuditLine(text);
      if (!parsed.ok) return { seq: prev ? prev.seq + 1 : null, deliveryId: null, entry: null, at, reason: parsed.error };
      const line = parsed.value;
      const reason = checkAuditLine(line, prev ? { seq: prev.seq + 1, prevHash: prev.hash } : { seq: line.seq, prevHash: line.prevHash });
      if (reason !== null) return { seq: line.seq, deliveryId: null, entry: `${line.action} by ${line.actor}`, at, reason };
      prev = { seq: line.seq, hash: line.entryHash };
      verified.records++;
      verified.chainVersions.add(line.chainVersion);
      verified.last = prev;
      return null;
    },
  };
}
