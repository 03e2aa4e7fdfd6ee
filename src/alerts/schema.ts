/**
 * SQLite schema of the Alerts Durable Object (docs/storage.md "Alerts"), applied by lib/migrate.ts.
 * Times are epoch ms. Bounds: resolved issues are kept RESOLVED_KEPT_DAYS after they resolve;
 * sent issue_events at most EVENTS_KEPT rows; observations one row per (condition with a hold, object) seen now;
 * refusals one row per (source, minute) of the last 10 minutes.
 */
export const ALERTS_MIGRATIONS = [
  `CREATE TABLE issues (
     id INTEGER PRIMARY KEY,          -- the issue id is "issue-<id>"
     condition TEXT NOT NULL,
     object TEXT NOT NULL,            -- source:<id> | target:<id> | channel:<id>
     severity TEXT NOT NULL,          -- critical | warning | info
     state TEXT NOT NULL,             -- open | acknowledged | resolved
     summary TEXT NOT NULL,
     first_seen_at INTEGER NOT NULL,
     last_seen_at INTEGER NOT NULL,
     count INTEGER NOT NULL,
     acknowledged_by TEXT,
     acknowledged_at INTEGER,
     note TEXT,
     resolved_by TEXT,
     resolved_at INTEGER
   );
   CREATE INDEX issues_by_object ON issues (condition, object, id);
   CREATE INDEX issues_by_state ON issues (state, id);
   CREATE TABLE issue_events (
     seq INTEGER PRIMARY KEY,         -- the change's id is "issue-event-<seq>"
     issue_id INTEGER NOT NULL,
     type TEXT NOT NULL,              -- issue.opened | issue.acknowledged | issue.resolved
     at INTEGER NOT NULL,
     snapshot TEXT NOT NULL,          -- IssueSnapshot JSON as of the change
     sent_at INTEGER                  -- when notifyIssueChange resolved; NULL until then
   );
   CREATE INDEX issue_events_unsent ON issue_events (sent_at, seq);
   CREATE TABLE observations (
     condition TEXT NOT NULL,
     object TEXT NOT NULL,
     since INTEGER NOT NULL,          -- first evaluation that saw the condition, without a gap since
     PRIMARY KEY (condition, object)
   );
   CREATE TABLE refusals (
     source TEXT NOT NULL,
     minute INTEGER NOT NULL,         -- epoch minutes
     n INTEGER NOT NULL,
     PRIMARY KEY (source, minute)
   );`,
];

/** Resolved issues are deleted this many days after they resolved. */
export const RESOLVED_KEPT_DAYS = 90;
/** Sent issue_events kept at most (oldest deleted first); unsent ones are never deleted. */
export const EVENTS_KEPT = 10_000;
