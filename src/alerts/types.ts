/**
 * The issues engine's contract with notifications (issue 19). The Alerts Durable Object calls
 * `notifyIssueChange` (alerts/notify.ts) at least once after every issue state change, with a
 * stable `change.id` (the notification's idempotency key).
 */

export type Severity = "critical" | "warning" | "info";

/** What an issue is about: one source, target or alert channel. */
export type IssueObject = { source: string } | { target: string } | { channel: string };

/** An issue as it stands after a change. */
export interface IssueSnapshot {
  issueId: string;
  condition: string;
  severity: Severity;
  object: IssueObject;
  /** One line, for a person. */
  summary: string;
  /** ISO 8601 UTC. */
  firstSeenAt: string;
  lastSeenAt: string;
  count: number;
  /** The page that explains it (absolute, or a path under the relay). */
  url: string;
  state: "open" | "acknowledged" | "resolved";
}

/** One state change of an issue. */
export interface IssueChange {
  /** Stable across repeated calls for the same change. */
  id: string;
  type: "issue.opened" | "issue.acknowledged" | "issue.resolved";
  /** ISO 8601 UTC. */
  timestamp: string;
  data: IssueSnapshot;
}
