import { GENESIS } from "../lib/chain";
import { execFragment, type Fragment, fragment, joinFragments } from "../lib/sql";
import { AUDIT_CHAIN_VERSION, type AuditLine, type AuditVia, auditLineText, auditLink, checkAuditLine } from "./format";

/**
 * The audit trail's entries in SQLite, pure functions over the Durable Object's storage
 * (audit/trail.ts is the thin class around them). Every write is one synchronous step, so the
 * chain's head is read and extended with no other write in between.
 */

/** What a caller records; the trail adds seq, at and the chain. */
export interface NewEntry {
  actor: string;
  role: string;
  via: AuditVia;
  action: string;
  object: Record<string, string> | null;
  reason: string | null;
  requestId: string | null;
  address: string | null;
  before: unknown;
  after: unknown;
}

/** Filters of a listing; times epoch ms, `to` exclusive; `cursor` is the seq to continue below. */
export interface AuditQuery {
  actor?: string;
  /** Exact, or a prefix when it ends in `.*` (`delivery.*`). */
  action?: string;
  /** An id (`s1`) or a typed id (`source:s1`) the entry concerns. */
  object?: string;
  from?: number;
  to?: number;
  cursor?: number;
  limit: number;
}

/** A position in the chain: an entry's seq and hash; seq 0 with GENESIS is before entry 1. */
export interface AuditPoint {
  seq: number;
  hash: string;
}

const TEXT_LIMIT = 1000;
/** Bytes of a before/after document kept at most (a document is limited far below this: config/limits.ts). */
const DOCUMENT_LIMIT = 256 * 1024;

/** The last entry, or the chain's start. */
export function head(sql: SqlStorage): AuditPoint {
  const row = sql.exec<{ seq: number; entry_hash: string }>("SELECT seq, entry_hash FROM entries ORDER BY seq DESC LIMIT 1").toArray()[0];
  return row ? { seq: row.seq, hash: row.entry_hash } : { seq: 0, hash: GENESIS };
}

/** Appends one entry after the head, in one step; answers it as chained. */
export function appendEntry(sql: SqlStorage, e: NewEntry, at: number): AuditLine {
  const prev = head(sql);
  const document = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v).slice(0, DOCUMENT_LIMIT));
  const clip = (s: string | null) => (s === null ? null : s.slice(0, TEXT_LIMIT));
  const object = e.object && Object.keys(e.object).length > 0 ? e.object : null;
  const fields = {
    prevHash: prev.hash,
    seq: prev.seq + 1,
    at,
    actor: clip(e.actor)!,
    role: clip(e.role)!,
    via: e.via,
    action: clip(e.action)!,
    object: object ? JSON.stringify(object) : null,
    reason: clip(e.reason),
    requestId: clip(e.requestId),
    address: clip(e.address),
    before: document(e.before),
    after: document(e.after),
  };
  const line: AuditLine = { ...fields, chainVersion: AUDIT_CHAIN_VERSION, entryHash: auditLink(fields) };
  sql.exec(
    `INSERT INTO entries (seq, at, actor, role, via, action, object, reason, request_id, address, before, after, chain_version, prev_hash, entry_hash)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    line.seq,
    line.at,
    line.actor,
    line.role,
    line.via,
    line.action,
    line.object,
    line.reason,
    line.requestId,
    line.address,
    line.before,
    line.after,
    line.chainVersion,
    line.prevHash,
    line.entryHash,
  );
  for (const [type, id] of Object.entries(object ?? {}))
    for (const value of new Set([id, `${type}:${id}`]))
      sql.exec("INSERT OR IGNORE INTO entry_objects (value, seq) VALUES (?, ?)", value.slice(0, TEXT_LIMIT), line.seq);
  return line;
}

/** An entry's row as its line. */
export function rowToLine(r: Record<string, SqlStorageValue>): AuditLine {
  return {
    seq: r.seq as number,
    at: r.at as number,
    actor: r.actor as string,
    role: r.role as string,
    via: r.via as AuditVia,
    action: r.action as string,
    object: r.object as string | null,
    reason: r.reason as string | null,
    requestId: r.request_id as string | null,
    address: r.address as string | null,
    before: r.before as string | null,
    after: r.after as string | null,
    chainVersion: r.chain_version as number,
    prevHash: r.prev_hash as string,
    entryHash: r.entry_hash as string,
  };
}

/** The WHERE of a listing's filters (not the cursor). */
function filters(q: Omit<AuditQuery, "cursor" | "limit">): Fragment[] {
  const where: Fragment[] = [];
  if (q.actor) where.push(fragment("actor = ?", q.actor));
  if (q.action?.endsWith(".*")) where.push(fragment("substr(action, 1, ?) = ?", q.action.length - 1, q.action.slice(0, -1)));
  else if (q.action) where.push(fragment("action = ?", q.action));
  if (q.object) where.push(fragment("seq IN (SELECT seq FROM entry_objects WHERE value = ?)", q.object));
  if (q.from !== undefined) where.push(fragment("at >= ?", q.from));
  if (q.to !== undefined) where.push(fragment("at < ?", q.to));
  return where;
}

/** A page of entries matching `q`, newest first; `next` is the cursor of the following page, or null. */
export function listEntries(sql: SqlStorage, q: AuditQuery): { items: AuditLine[]; next: string | null } {
  const where = filters(q);
  if (q.cursor !== undefined) where.push(fragment("seq < ?", q.cursor));
  const w = joinFragments(where);
  const rows = execFragment(sql, { sql: `SELECT * FROM entries WHERE ${w.sql} ORDER BY seq DESC LIMIT ?`, params: [...w.params, q.limit + 1] }).toArray();
  const items = rows.slice(0, q.limit).map(rowToLine);
  return { items, next: rows.length > q.limit ? String(items.at(-1)!.seq) : null };
}

/** The first and last seq written in [from, to), or null when none was. */
export function exportRange(sql: SqlStorage, from?: number, to?: number): { firstSeq: number; lastSeq: number } | null {
  const w = joinFragments(filters({ from, to }));
  const row = execFragment<{ first: number | null; last: number | null }>(sql, {
    sql: `SELECT MIN(seq) AS first, MAX(seq) AS last FROM entries WHERE ${w.sql}`,
    params: w.params,
  }).one();
  return row.first === null || row.last === null ? null : { firstSeq: row.first, lastSeq: row.last };
}

/** NDJSON of entries `firstSeq`.. (at most `lastSeq`), at most `rows` of them; `next` continues, null at the end. */
export function exportPage(sql: SqlStorage, firstSeq: number, lastSeq: number, rows: number): { text: string; next: number | null } {
  let text = "";
  let last = firstSeq - 1;
  for (const r of sql.exec("SELECT * FROM entries WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?", firstSeq, lastSeq, rows)) {
    const line = rowToLine(r);
    text += auditLineText(line);
    last = line.seq;
  }
  return { text, next: last >= firstSeq && last < lastSeq ? last + 1 : null };
}

/** Where a verification of the stored chain got: verified through `through`, or the first broken entry. */
export interface ChainCheck {
  through: AuditPoint;
  broken: { seq: number; reason: string } | null;
}

/** Verifies at most `rows` entries after `after` (their links and hashes); stops at the first broken one. */
export function verifyEntries(sql: SqlStorage, after: AuditPoint, rows: number): ChainCheck {
  let at = after;
  for (const r of sql.exec("SELECT * FROM entries WHERE seq > ? ORDER BY seq LIMIT ?", after.seq, rows)) {
    const line = rowToLine(r);
    const reason = checkAuditLine(line, { seq: at.seq + 1, prevHash: at.hash });
    if (reason !== null) return { through: at, broken: { seq: at.seq + 1, reason } };
    at = { seq: line.seq, hash: line.entryHash };
  }
  return { through: at, broken: null };
}

/** A JSON value of the meta table, or `fallback`. */
export function readMeta<T>(sql: SqlStorage, key: string, fallback: T): T {
  const row = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
  return row ? (JSON.parse(row.value) as T) : fallback;
}

export function writeMeta(sql: SqlStorage, key: string, value: unknown): void {
  sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, JSON.stringify(value));
}

/** How many entries there are. */
export function countEntries(sql: SqlStorage): number {
  return sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM entries").one().n;
}
