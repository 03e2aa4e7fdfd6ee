import { COUNTER_HOURS_MIGRATION, COUNTER_SET_MIGRATION } from "../lib/counters";
import { latencyBucketSql } from "./counters";

/**
 * Outbox SQLite schema, one database per target. Migrations are append-only: the index of a
 * migration is its version (src/lib/migrate.ts). Times are epoch ms. See docs/delivery.md.
 * The first migration names the dispatches table `deliveries`; migration 4 renames it.
 */
export const OUTBOX_MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (
     id INTEGER PRIMARY KEY CHECK (id = 1), -- exactly one row
     target_id TEXT,                         -- set by the first enqueue
     ordered INTEGER NOT NULL DEFAULT 0,     -- the target's "ordered", as last read by the alarm
     held_by TEXT,                           -- NULL | 'gone' (410: lifted by resume) | 'config' (lifted when the config is usable)
     held_reason TEXT,
     breaker_failures INTEGER NOT NULL DEFAULT 0,
     breaker_probe_at INTEGER,               -- NULL = breaker closed
     breaker_cooldown_ms INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     last_error_at INTEGER,
     last_success_at INTEGER
   );
   INSERT INTO meta (id) VALUES (1);
   CREATE TABLE deliveries (
     seq INTEGER PRIMARY KEY,                -- enqueue order, never reused (table renamed dispatches by migration 4)
     source TEXT NOT NULL,
     delivery_id TEXT NOT NULL,              -- the outbound webhook-id
     kind TEXT NOT NULL,
     subject TEXT,                           -- ordering lane of ordered targets; NULL = own lane
     received_at INTEGER NOT NULL,           -- when the relay accepted the delivery
     envelope TEXT NOT NULL,                 -- CloudEvents JSON
     body BLOB NOT NULL,                     -- original body, byte-exact (format raw)
     headers TEXT NOT NULL,                  -- JSON of the forwardable x-actigraph-* headers
     state TEXT NOT NULL,                    -- pending | delivering | delivered | dead | held | not_wanted (migration 3)
     window_attempts INTEGER NOT NULL DEFAULT 0, -- attempts since first_planned_at
     next_at INTEGER,                        -- due time while pending, else NULL
     first_planned_at INTEGER NOT NULL,      -- start of the retry window (enqueue, replay, resume)
     last_error TEXT,
     delivered_at INTEGER,
     enqueued_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     UNIQUE (source, delivery_id)
   );
   CREATE INDEX deliveries_by_state ON deliveries (state, next_at);
   CREATE INDEX deliveries_by_lane ON deliveries (subject, received_at, seq) WHERE state IN ('pending', 'delivering');
   CREATE TABLE attempts (
     id INTEGER PRIMARY KEY,
     seq INTEGER NOT NULL,                   -- dispatches.seq
     n INTEGER NOT NULL,                     -- 1-based over the delivery's whole history
     started_at INTEGER NOT NULL,
     duration_ms INTEGER,
     status INTEGER,                         -- HTTP status; NULL when no response
     response_headers TEXT,                  -- JSON of selected response headers
     response_body TEXT,                     -- first 4 KiB of the response body
     error_class TEXT,                       -- dns | connect | timeout | tls | http | config
     error TEXT,
     outcome TEXT NOT NULL                   -- in_flight | success | failure | interrupted
   );
   CREATE INDEX attempts_by_delivery ON attempts (seq, n);`,
  // Recovery after a crash looks up in-flight attempts on every alarm run: keep that lookup O(in-flight).
  `CREATE INDEX attempts_in_flight ON attempts (id) WHERE outcome = 'in_flight';`,
  // Rows planned while the target's document was invalid: its filter decides once it is valid (wanted → on; not → not_wanted).
  `ALTER TABLE deliveries ADD COLUMN unfiltered INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX deliveries_unfiltered ON deliveries (seq) WHERE unfiltered = 1;`,
  // Outbox rows are *dispatches* (one event for this target); the ledger's rows are deliveries.
  `ALTER TABLE deliveries RENAME TO dispatches;
   DROP INDEX deliveries_by_state;
   CREATE INDEX dispatches_by_state ON dispatches (state, next_at);
   DROP INDEX deliveries_by_lane;
   CREATE INDEX dispatches_by_lane ON dispatches (subject, received_at, seq) WHERE state IN ('pending', 'delivering');
   DROP INDEX deliveries_unfiltered;
   CREATE INDEX dispatches_unfiltered ON dispatches (seq) WHERE unfiltered = 1;`,
  // Attempts per dispatch kept on the row, so numbering an attempt is no COUNT over the attempt log.
  `ALTER TABLE dispatches ADD COLUMN attempt_count INTEGER NOT NULL DEFAULT 0;
   UPDATE dispatches SET attempt_count = (SELECT COUNT(*) FROM attempts WHERE attempts.seq = dispatches.seq);`,
  // Counters maintained on write (counters.ts), so health() and metrics() never scan history;
  // filled here from the rows so far. The latency buckets are those of views.ts LATENCY_BUCKETS_S:
  // changing those needs a migration that rebuilds the latency counters.
  `CREATE TABLE counters (
     name TEXT PRIMARY KEY,                  -- state:<state>, attempts:<outcome>:<error class>, latency:<bucket>, latency:sum_ms, pruned:*
     value INTEGER NOT NULL
   );
   INSERT INTO counters (name, value) SELECT 'state:' || state, COUNT(*) FROM dispatches GROUP BY state;
   INSERT INTO counters (name, value) SELECT 'attempts:' || outcome || ':' || COALESCE(error_class, ''), COUNT(*) FROM attempts GROUP BY outcome, error_class;
   INSERT INTO counters (name, value)
     SELECT 'latency:' || (${latencyBucketSql("lat")}), COUNT(*) FROM (SELECT MAX(0, delivered_at - received_at) AS lat FROM dispatches WHERE state = 'delivered') GROUP BY 1;
   INSERT INTO counters (name, value) SELECT 'latency:sum_ms', COALESCE(SUM(MAX(0, delivered_at - received_at)), 0) FROM dispatches WHERE state = 'delivered';`,
  // Retention (retention.ts): delivered dispatches by delivery time, and what the alarm last read.
  //   meta.retention_days  the target's retentionDays as last read by the alarm (NULL: the default)
  //   meta.last_pruned_at  when retention last removed rows
  `CREATE INDEX dispatches_delivered ON dispatches (delivered_at) WHERE state = 'delivered';
   ALTER TABLE meta ADD COLUMN retention_days INTEGER;
   ALTER TABLE meta ADD COLUMN last_pruned_at INTEGER;`,
  // Rows planned while the document was invalid, wanted by its fixed filter, for a target with
  // `enrich`: held until the source's ledger hands them off again with their enrichment plan
  // (src/ledger/enrichment.ts planReleased); the new item then replaces the row. 1 = ask the ledger, 2 = asked.
  `ALTER TABLE dispatches ADD COLUMN awaiting_plan INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX dispatches_awaiting_plan ON dispatches (seq) WHERE awaiting_plan = 1;`,
  // Rate limit (the target's rateLimit): the earliest time the next send may start; NULL = no limit in force.
  `ALTER TABLE meta ADD COLUMN rate_next_at INTEGER;`,
  // Batch mode (the target's batch), as last read by the alarm: NULL = not batching.
  `ALTER TABLE meta ADD COLUMN batch_max INTEGER;
   ALTER TABLE meta ADD COLUMN batch_wait_ms INTEGER;`,
  // Counters in one row (lib/counters.ts): a batch's counter changes cost one row written, not one per counter.
  COUNTER_SET_MIGRATION,
  // Fewer rows written per dispatch (issue 17):
  //   attempt   the latest attempt while it has no attempts row (transitions.ts IN_ROW): in flight, or
  //             a success; so a first-try success writes no attempts row
  //   counters  a claim changes none: `state:pending` counts delivering rows too, and an attempt in
  //             flight is not counted (it is a delivering row)
  `ALTER TABLE dispatches ADD COLUMN attempt TEXT;`,
  `UPDATE counter_set SET data = json_remove(
     json_set(data, '$."state:pending"', COALESCE(json_extract(data, '$."state:pending"'), 0) + COALESCE(json_extract(data, '$."state:delivering"'), 0)),
     '$."state:delivering"', '$."attempts:in_flight:"');`,
  // The ordering lane only where it is used (transitions.ts LANE): 'lane' is the subject while the
  // target is ordered, else NULL, and the lane index holds only rows with a lane, so an unordered
  // target's dispatch writes no entry there (two fewer rows written per dispatch).
  `ALTER TABLE dispatches ADD COLUMN lane TEXT;
   UPDATE dispatches SET lane = CASE WHEN (SELECT ordered FROM meta) = 1 THEN subject END WHERE state NOT IN ('delivered', 'dead', 'not_wanted');
   DROP INDEX dispatches_by_lane;
   CREATE INDEX dispatches_by_lane ON dispatches (lane, received_at, seq) WHERE lane IS NOT NULL AND state IN ('pending', 'delivering');`,
  // Hourly snapshots of the counters, for trends (lib/counters.ts; one row per hour with changes, 90 days).
  COUNTER_HOURS_MIGRATION,
  // Retention's audit entry (system-audit.ts auditPruning): at most one a day, with the rows pruned since the last one.
  //   prune_audited_at          when the last target.retention-prune entry was written (or tried)
  //   prune_audited_dispatches  pruned:dispatches as of the last entry written
  //   prune_audited_attempts    pruned:attempts as of the last entry written
  `ALTER TABLE meta ADD COLUMN prune_audited_at INTEGER;
   ALTER TABLE meta ADD COLUMN prune_audited_dispatches INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE meta ADD COLUMN prune_audited_attempts INTEGER NOT NULL DEFAULT 0;`,
];
