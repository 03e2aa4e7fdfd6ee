import type { Condition, Severity } from "../config/alerting";
import { type Fragment, fragment, joinFragments, inChunks, placeholders } from "../lib/sql";
import { type Finding, type IssueChange, type IssueFilter, type IssueObject, type IssueState, type IssueView, objectKey, objectOfKey } from "./types";

/**
 * The issues table and its events, as plain functions over the Alerts object's SqlStorage. Every
 * state change writes its issue_events row in the caller's transaction (the Alerts class wraps each
 * RPC in transactionSync), so a change is never without its notification, nor one without the other.
 */

/** An issue that clears and returns within this time is reopened (same id), not a new one. */
export const FLAP_MS = 5 * 60_000;

/** A stored `issues` row. */
type IssueRow = {
  id: number;
  condition: Condition;
  object: string;
  severity: Severity;
  state: IssueState;
  summary: string;
  first_seen_at: number;
  last_seen_at: number;
  count: number;
  acknowledged_by: string | null;
  acknowledged_at: number | null;
  note: string | null;
  resolved_by: string | null;
  resolved_at: number | null;
};

/** What building a snapshot needs besides the row: the relay's public base URL ("" = paths). */
export interface IssueContext {
  baseUrl: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The issue id of a row id, and back (null when `id` is not one). */
export const issueId = (id: number) => `issue-${id}`;
export function rowIdOf(id: string): number | null {
  const m = /^issue-([1-9][0-9]{0,15})$/.exec(id);
  return m ? Number(m[1]) : null;
}

/** The dashboard page that explains an issue's object. */
export function issueUrl(object: IssueObject, baseUrl: string): string {
  const path =
    "source" in object
      ? `/admin/ui/sources/${encodeURIComponent(object.source)}`
      : "target" in object
        ? `/admin/ui/targets/${encodeURIComponent(object.target)}`
        : `/admin/ui/issues?object=${encodeURIComponent(objectKey(object))}`;
  return baseUrl.replace(/\/+$/, "") + path;
}

function rowToIssue(r: IssueRow, ctx: IssueContext): IssueView {
  const object = objectOfKey(r.object);
  return {
    issueId: issueId(r.id),
    condition: r.condition,
    severity: r.severity,
    object,
    summary: r.summary,
    firstSeenAt: iso(r.first_seen_at),
    lastSeenAt: iso(r.last_seen_at),
    count: r.count,
    url: issueUrl(object, ctx.baseUrl),
    state: r.state,
    ...(r.acknowledged_by !== null && { acknowledgedBy: r.acknowledged_by }),
    ...(r.note !== null && { note: r.note }),
    ...(r.acknowledged_at !== null && { acknowledgedAt: iso(r.acknowledged_at) }),
    ...(r.resolved_at !== null && { resolvedAt: iso(r.resolved_at) }),
    ...(r.resolved_by !== null && { resolvedBy: r.resolved_by }),
  };
}

function readRow(sql: SqlStorage, id: number): IssueRow | null {
  return sql.exec<IssueRow>("SELECT * FROM issues WHERE id = ?", id).toArray()[0] ?? null;
}

/** Appends the change of `row` (as it is now) to issue_events. */
function appendEvent(sql: SqlStorage, row: IssueRow, type: IssueChange["type"], at: number, ctx: IssueContext): void {
  const { acknowledgedAt: _a, resolvedAt: _r, resolvedBy: _b, ...snapshot } = rowToIssue(row, ctx);
  sql.exec("INSERT INTO issue_events (issue_id, type, at, snapshot) VALUES (?, ?, ?, ?)", row.id, type, at, JSON.stringify(snapshot));
}

/**
 * A condition seen now on an object: touches the issue that is open or acknowledged (last seen,
 * count += `finding.count`, summary); reopens one resolved less than FLAP_MS ago (same id, an
 * `issue.opened` change); else opens a new one (count = `finding.count`, at least 1).
 */
export function raise(sql: SqlStorage, finding: Finding, severity: Severity, now: number, ctx: IssueContext): void {
  const key = objectKey(finding.object);
  const current = sql.exec<IssueRow>("SELECT * FROM issues WHERE condition = ? AND object = ? ORDER BY id DESC LIMIT 1", finding.condition, key).toArray()[0];
  const summary = finding.summary.slice(0, 300);
  if (current && current.state !== "resolved") {
    sql.exec(
      "UPDATE issues SET last_seen_at = ?, count = count + ?, summary = ?, severity = ? WHERE id = ?",
      now,
      finding.count ?? 0,
      summary,
      severity,
      current.id,
    );
    return;
  }
  let id: number;
  if (current && current.resolved_at !== null && now - current.resolved_at < FLAP_MS) {
    id = current.id;
    sql.exec(
      `UPDATE issues SET state = 'open', last_seen_at = ?, count = count + ?, summary = ?, severity = ?,
         acknowledged_by = NULL, acknowledged_at = NULL, note = NULL, resolved_by = NULL, resolved_at = NULL WHERE id = ?`,
      now,
      Math.max(1, finding.count ?? 1),
      summary,
      severity,
      id,
    );
  } else {
    id = sql
      .exec<{ id: number }>(
        `INSERT INTO issues (condition, object, severity, state, summary, first_seen_at, last_seen_at, count)
         VALUES (?, ?, ?, 'open', ?, ?, ?, ?) RETURNING id`,
        finding.condition,
        key,
        severity,
        summary,
        now,
        now,
        Math.max(1, finding.count ?? 1),
      )
      .one().id;
  }
  appendEvent(sql, readRow(sql, id)!, "issue.opened", now, ctx);
}

/** Resolves an issue that is not resolved yet (by `by`: an actor id, or `system` when its condition cleared); false when it already was. */
export function resolveIssue(sql: SqlStorage, id: number, by: string, now: number, ctx: IssueContext): boolean {
  const row = readRow(sql, id);
  if (!row || row.state === "resolved") return false;
  sql.exec("UPDATE issues SET state = 'resolved', resolved_by = ?, resolved_at = ? WHERE id = ?", by, now, id);
  appendEvent(sql, readRow(sql, id)!, "issue.resolved", now, ctx);
  return true;
}

/** Why acknowledging or resolving by hand did nothing. */
export type ActionRefusal = "not_found" | "resolved" | "acknowledged";

/** Acknowledges an open issue (by whom, when, an optional note). */
export function acknowledgeIssue(sql: SqlStorage, id: number, by: string, note: string | null, now: number, ctx: IssueContext): ActionRefusal | null {
  const row = readRow(sql, id);
  if (!row) return "not_found";
  if (row.state !== "open") return row.state;
  sql.exec("UPDATE issues SET state = 'acknowledged', acknowledged_by = ?, acknowledged_at = ?, note = ? WHERE id = ?", by, now, note, id);
  appendEvent(sql, readRow(sql, id)!, "issue.acknowledged", now, ctx);
  return null;
}

/** The unresolved issues of the given conditions, by condition and object key. */
export function unresolved(sql: SqlStorage, conditions: readonly Condition[]): { id: number; condition: Condition; object: string; lastSeenAt: number }[] {
  return inChunks(conditions).flatMap((chunk) =>
    sql
      .exec<{ id: number; condition: Condition; object: string; last_seen_at: number }>(
        `SELECT id, condition, object, last_seen_at FROM issues WHERE state != 'resolved' AND condition IN (${placeholders(chunk)})`,
        ...chunk,
      )
      .toArray()
      .map((r) => ({ id: r.id, condition: r.condition, object: r.object, lastSeenAt: r.last_seen_at })),
  );
}

/** One issue, or null. */
export function readIssue(sql: SqlStorage, id: number, ctx: IssueContext): IssueView | null {
  const row = readRow(sql, id);
  return row && rowToIssue(row, ctx);
}

/** Issues matching the filter, unresolved first, newest first. */
export function listIssues(sql: SqlStorage, filter: IssueFilter, ctx: IssueContext): IssueView[] {
  const where: Fragment[] = [];
  if (filter.state) where.push(fragment("state = ?", filter.state));
  if (filter.severity) where.push(fragment("severity = ?", filter.severity));
  if (filter.object) where.push(fragment("object = ?", filter.object));
  const w = joinFragments(where);
  return sql
    .exec<IssueRow>(`SELECT * FROM issues WHERE ${w.sql} ORDER BY state = 'resolved', last_seen_at DESC, id DESC LIMIT ?`, ...w.params, filter.limit)
    .toArray()
    .map((r) => rowToIssue(r, ctx));
}

/** Unresolved issues by condition and severity (metrics). */
export function openCounts(sql: SqlStorage): { condition: Condition; severity: Severity; count: number }[] {
  return sql
    .exec<{ condition: Condition; severity: Severity; count: number }>(
      "SELECT condition, severity, COUNT(*) AS count FROM issues WHERE state != 'resolved' GROUP BY condition, severity ORDER BY condition, severity",
    )
    .toArray();
}

/** Up to `limit` changes not yet handed to notifyIssueChange, oldest first. */
export function unsentChanges(sql: SqlStorage, limit: number): IssueChange[] {
  return sql
    .exec<{ seq: number; type: IssueChange["type"]; at: number; snapshot: string }>(
      "SELECT seq, type, at, snapshot FROM issue_events WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
      limit,
    )
    .toArray()
    .map((r) => ({ id: `issue-event-${r.seq}`, type: r.type, timestamp: iso(r.at), data: JSON.parse(r.snapshot) }));
}

/** Marks a change sent (idempotent). */
export function markSent(sql: SqlStorage, changeId: string, now: number): void {
  const seq = Number(changeId.slice("issue-event-".length));
  sql.exec("UPDATE issue_events SET sent_at = ? WHERE seq = ? AND sent_at IS NULL", now, seq);
}

/** Whether any change waits to be sent. */
export function hasUnsent(sql: SqlStorage): boolean {
  return sql.exec("SELECT 1 FROM issue_events WHERE sent_at IS NULL LIMIT 1").toArray().length > 0;
}

/** Deletes resolved issues older than `keptMs` and sent events beyond the newest `eventsKept`. */
export function pruneIssues(sql: SqlStorage, now: number, keptMs: number, eventsKept: number): void {
  sql.exec("DELETE FROM issues WHERE state = 'resolved' AND resolved_at < ?", now - keptMs);
  sql.exec("DELETE FROM issue_events WHERE sent_at IS NOT NULL AND seq <= (SELECT seq FROM issue_events ORDER BY seq DESC LIMIT 1 OFFSET ?)", eventsKept);
}
