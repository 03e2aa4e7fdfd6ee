import { COUNTER_HOURS_MIGRATION, COUNTER_SET_MIGRATION } from "../lib/counters";
/**
 * Reconciler SQLite schema, one database per source. Migrations are append-only: the index of a
 * migration is its version (see src/lib/migrate.ts). See docs/storage.md and docs/reconciliation.md.
 */
export const RECONCILER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE runs (
     id INTEGER PRIMARY KEY,               -- grows; the newest REPORTS_KEPT rows are kept
     trigger TEXT NOT NULL,                -- manual | scheduled
     started_at INTEGER NOT NULL,          -- epoch ms
     finished_at INTEGER,                  -- epoch ms; NULL while the run is in progress
     outcome TEXT NOT NULL,                -- running | ok | errors | failed
     lookback_from INTEGER NOT NULL,       -- epoch ms; history items created before it are read, never backfilled
     next_offset INTEGER NOT NULL DEFAULT 0, -- where the next history page starts
     total_count INTEGER,                  -- totalCount of the last page read
     invocations INTEGER NOT NULL DEFAULT 0,
     pauses INTEGER NOT NULL DEFAULT 0,    -- waits for CentrePoint's rate limit so far
     pages INTEGER NOT NULL DEFAULT 0,
     scanned INTEGER NOT NULL DEFAULT 0,   -- history rows read, repeats of one delivery id included
     outside_lookback INTEGER NOT NULL DEFAULT 0,
     matched INTEGER NOT NULL DEFAULT 0,   -- the four classes are written when the run ends
     backfilled INTEGER NOT NULL DEFAULT 0,
     recorded_but_failed INTEGER NOT NULL DEFAULT 0,
     skipped INTEGER NOT NULL DEFAULT 0,
     errors INTEGER NOT NULL DEFAULT 0,
     first_error TEXT,
     backfilled_ids TEXT NOT NULL DEFAULT '[]', -- JSON array, at most BACKFILLED_IDS_KEPT ids
     failure TEXT,                         -- a failed run: config | upstream | internal
     upstream_status INTEGER,              -- a failed run: CentrePoint's HTTP status, if it answered
     upstream_endpoint TEXT                -- a failed run: the API path template that failed
   );
   CREATE UNIQUE INDEX one_running_run ON runs (outcome) WHERE outcome = 'running';
   CREATE TABLE run_items (
     delivery_id TEXT PRIMARY KEY,         -- one row per distinct delivery id of the run in progress
     state TEXT NOT NULL,                  -- known | backfilling | backfilled | skipped | error (| pruned: migration 2)
     provenance TEXT,                      -- known: the ledger's provenance (webhook | centrepoint-history)
     delivered INTEGER NOT NULL DEFAULT 0  -- 1 once any history row of it shows a 2xx answer without errorMessage
   ) WITHOUT ROWID;
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE counters (
     name TEXT PRIMARY KEY,                -- runs:ok | runs:errors | runs:failed | backfilled
     value INTEGER NOT NULL
   );`,
  // Ids the ledger recorded once and retention removed since (state 'pruned' of run_items): known, never backfilled again.
  `ALTER TABLE runs ADD COLUMN known_pruned INTEGER NOT NULL DEFAULT 0;`,
  // Counters in one row (lib/counters.ts), as every object keeps them.
  COUNTER_SET_MIGRATION,
  COUNTER_HOURS_MIGRATION,
];
