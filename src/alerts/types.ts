import type { Condition, Severity } from "../config/alerting";

/**
 * Types that cross the Alerts Durable Object's boundary (docs/alerting.md). An issue is one
 * condition on one object; times crossing the boundary as strings are ISO 8601 UTC, epoch ms elsewhere.
 */

export type { Condition, Severity };

/** What an issue is about: a source, a target, or an alert channel (src/alerts/ channels report their own failures). */
export type IssueObject = { source: string } | { target: string } | { channel: string };

/** An issue's state: open → acknowledged → resolved (automatically or by hand); a resolved issue may reopen (flapping). */
export type IssueState = "open" | "acknowledged" | "resolved";

/** An issue as notifications and the API carry it. */
export interface IssueSnapshot {
  issueId: string;
  /** The condition; `test` only in the test notification of POST /admin/alerts/:id/test. */
  condition: Condition | "test";
  severity: Severity;
  object: IssueObject;
  summary: string;
  firstSeenAt: string;
  lastSeenAt: string;
  count: number;
  url: string;
  state: IssueState;
  acknowledgedBy?: string;
  note?: string;
}

/** One state change of an issue, handed to notifyIssueChange at least once; `id` (`issue-event-<seq>`) is stable across retries. */
export interface IssueChange {
  id: string;
  type: "issue.opened" | "issue.acknowledged" | "issue.resolved";
  timestamp: string;
  data: IssueSnapshot;
}

/** An issue as the admin API lists it: the snapshot, and who resolved it and when. */
export interface IssueView extends IssueSnapshot {
  acknowledgedAt?: string;
  resolvedAt?: string;
  resolvedBy?: string;
}

/**
 * A condition seen on an object, now. `count` adds to the issue's count (events: how many
 * happened; a state: 1 when it opens). `holdMs`: how long the condition must have been seen, without
 * a gap, before it opens an issue (0: at once).
 */
export interface Finding {
  condition: Condition;
  object: IssueObject;
  summary: string;
  count?: number;
  holdMs?: number;
}

/** What one evaluation covered: the conditions it evaluated, and objects whose reads failed (their issues are left as they are). */
export interface EvaluationScope {
  conditions: Condition[];
  skipObjects: string[];
}

/** Filter of the issue list. */
export interface IssueFilter {
  state?: IssueState;
  severity?: Severity;
  /** `source:<id>`, `target:<id>` or `channel:<id>`. */
  object?: string;
  limit: number;
}

/** Issues listed per page at most. */
export const MAX_ISSUES_LISTED = 500;

/** The key of an object, as stored and filtered on: `source:<id>`, `target:<id>`, `channel:<id>`. */
export function objectKey(object: IssueObject): string {
  if ("source" in object) return `source:${object.source}`;
  if ("target" in object) return `target:${object.target}`;
  return `channel:${object.channel}`;
}

/** The object of a key made by objectKey. */
export function objectOfKey(key: string): IssueObject {
  const i = key.indexOf(":");
  const [kind, id] = [key.slice(0, i), key.slice(i + 1)];
  return kind === "source" ? { source: id } : kind === "target" ? { target: id } : { channel: id };
}

/** The Alerts object's name: one for the relay. */
export const ALERTS_NAME = "relay";
