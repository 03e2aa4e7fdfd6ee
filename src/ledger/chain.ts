// Explicit extension: Node loads this file too (scripts/verify-archive.ts); esbuild and vitest accept it.
import { chainLink, GENESIS } from "../lib/chain.ts";

/**
 * The ledger's hash chain, pure. Each record's link is SHA-256 over the previous link and the
 * record's immutable fields; a record keeps the version it was written under, so ledgers started
 * under version 1 keep verifying after version 2 was introduced.
 *
 *   version 1: [prevHash, seq, deliveryId, event, kind, receivedAt, headers, bodySha256, envelopeSha256]
 *   version 2: ["v2", prevHash, seq, deliveryId, idDerived, event, kind, subject, attention,
 *               receivedAt, sourceIp, headers, bodySha256, envelopeSha256, provenance, sameBodyAs]
 *
 * Both cover the body and the envelope only through their digests, so a record whose body or
 * envelope was pruned (kept digests) still verifies. `duplicate_count` and `last_seen_at` are
 * counters, outside the chain.
 */

/** prev_hash of record 1 (lib/chain.ts). */
export { GENESIS };

export type ChainVersion = 1 | 2;

/** The version new records are written under. */
export const CURRENT_CHAIN_VERSION: ChainVersion = 2;

/** Everything a link covers (version 1 reads a subset). Times are epoch ms; headers is the stored JSON text. */
export interface ChainFields {
  prevHash: string;
  seq: number;
  deliveryId: string;
  idDerived: boolean;
  event: string | null;
  kind: string;
  subject: string | null;
  attention: string | null;
  receivedAt: number;
  sourceIp: string | null;
  headers: string;
  bodySha256: string;
  envelopeSha256: string;
  /** "webhook" (pushed by CentrePoint) or "centrepoint-history" (backfilled by reconciliation). */
  provenance: string;
  /** An earlier delivery of the same source with the same body under another id, or null. */
  sameBodyAs: string | null;
}

/** The link of one record under `version`. */
export function linkHash(version: ChainVersion, f: ChainFields): string {
  if (version === 1) {
    return chainLink([f.prevHash, f.seq, f.deliveryId, f.event, f.kind, f.receivedAt, f.headers, f.bodySha256, f.envelopeSha256]);
  }
  return chainLink([
    "v2",
    f.prevHash,
    f.seq,
    f.deliveryId,
    f.idDerived,
    f.event,
    f.kind,
    f.subject,
    f.attention,
    f.receivedAt,
    f.sourceIp,
    f.headers,
    f.bodySha256,
    f.envelopeSha256,
    f.provenance,
    f.sameBodyAs,
  ]);
}

/** A stored record as the integrity check reads it. */
export interface StoredLink {
  version: number;
  recordHash: string;
  /** The fields as stored; `bodySha256`/`envelopeSha256` are the stored digests. */
  fields: ChainFields;
  /** SHA-256 of the stored body bytes, or null when the body was pruned. */
  bodyDigest: string | null;
  /** SHA-256 of the stored envelope text, or null when it was pruned. */
  envelopeDigest: string | null;
}

/** Why a stored record does not verify against the record before it, or null when it does. */
export function checkLink(link: StoredLink, expected: { seq: number; prevHash: string }): string | null {
  const f = link.fields;
  if (f.seq !== expected.seq) return `record ${expected.seq} is missing`;
  if (f.prevHash !== expected.prevHash) return "prev_hash does not match the previous record";
  if (link.bodyDigest !== null && link.bodyDigest !== f.bodySha256) return "body does not match its SHA-256";
  if (link.envelopeDigest !== null && link.envelopeDigest !== f.envelopeSha256) return "envelope does not match its SHA-256";
  if (link.version !== 1 && link.version !== 2) return `unknown chain version ${link.version}`;
  return linkHash(link.version, f) === link.recordHash ? null : "record_hash does not match the record's contents";
}
