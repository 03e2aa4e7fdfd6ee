import { COUNTER_HOURS_MIGRATION, COUNTER_SET_MIGRATION } from "../lib/counters";
/**
 * SQLite schemas of the pull side's Durable Objects (docs/pull.md, docs/storage.md). Migrations are
 * append-only: the index of a migration is its version (src/lib/migrate.ts). Times are epoch ms.
 */

/** The Puller, one per source: enrichment jobs (one per delivery) and the data files it listed. */
export const PULLER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     delivery_id TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     keys TEXT NOT NULL,                   -- JSON EventKeys (src/pull/facts.ts): the ids the lookups need
     facts TEXT NOT NULL,                  -- JSON array: what to look up (the union of the waiting targets' facts)
     state TEXT NOT NULL,                  -- pending | settled
     result TEXT,                          -- JSON StoredEnrichment of the latest attempt (also stored in the ledger)
     attempts INTEGER NOT NULL DEFAULT 0,
     next_at INTEGER,                      -- pending: when the next attempt is due
     give_up_at INTEGER NOT NULL,          -- failed lookups are not retried past it
     fresh INTEGER NOT NULL DEFAULT 0,     -- 1: the next attempt bypasses the subject cache ("retry enrichment")
     outcome TEXT,                         -- settled: complete | partial | failed
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX jobs_due ON jobs (next_at) WHERE state = 'pending';
   CREATE INDEX jobs_settled ON jobs (updated_at) WHERE state = 'settled';
   CREATE TABLE files (
     file_id TEXT PRIMARY KEY,             -- CentrePoint's data file id, as links name it
     delivery_id TEXT NOT NULL,            -- the data_retrieval delivery whose enrichment listed it
     tracking_id TEXT NOT NULL,
     file_name TEXT NOT NULL,
     expires_at INTEGER,                   -- CentrePoint's expirationDateUtc; NULL when not given
     recorded_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX files_by_age ON files (recorded_at);
   CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // Counters in one row (lib/counters.ts), as every object keeps them.
  COUNTER_SET_MIGRATION,
  COUNTER_HOURS_MIGRATION,
];

/** The CentrePointGateway, one per API client: the subject cache and the raw-data request queue. */
export const CLIENT_MIGRATIONS: readonly string[] = [
  `CREATE TABLE subjects (
     study_id TEXT NOT NULL,
     subject_id TEXT NOT NULL,
     fact TEXT NOT NULL,                   -- JSON SubjectFact: identifiers and time zone only, never dob/gender/weight/height
     fetched_at INTEGER NOT NULL,
     PRIMARY KEY (study_id, subject_id)
   ) WITHOUT ROWID;
   CREATE INDEX subjects_by_age ON subjects (fetched_at);
   CREATE TABLE raw_requests (
     id INTEGER PRIMARY KEY,
     source TEXT NOT NULL,                 -- the source of the triggering delivery
     trigger_delivery_id TEXT NOT NULL,    -- the raw_processing.completed delivery that asked for it first
     part INTEGER NOT NULL,                -- 1-based part of a range split into gt3x's 15-day requests
     parts INTEGER NOT NULL,
     study_id TEXT NOT NULL,
     subject_id TEXT NOT NULL,
     file_format TEXT NOT NULL,            -- avro | csv | gt3x
     begin_utc TEXT NOT NULL,              -- the requested range, ISO-8601 UTC
     end_utc TEXT NOT NULL,
     state TEXT NOT NULL,                  -- queued | submitting | active | completed | error | failed | lost | invalid
     tracking_id TEXT,                     -- CentrePoint's request id once submitted
     queued_at INTEGER NOT NULL,
     submitted_at INTEGER,
     finished_at INTEGER,
     next_at INTEGER,                      -- queued: next submission try; active: next poll; NULL when finished
     tries INTEGER NOT NULL DEFAULT 0,     -- submission tries
     upstream_status TEXT,                 -- the status CentrePoint last gave (pending, processing, completed, error)
     error TEXT,
     overdue INTEGER NOT NULL DEFAULT 0,   -- 1 once still active past CentrePoint's 6-hour cancel (reported)
     completion_delivery_id TEXT,          -- the data_retrieval_complete delivery that reported it
     UNIQUE (study_id, subject_id, file_format, begin_utc, end_utc)
   );
   CREATE UNIQUE INDEX raw_requests_by_tracking ON raw_requests (tracking_id) WHERE tracking_id IS NOT NULL;
   CREATE INDEX raw_requests_due ON raw_requests (state, next_at);
   CREATE INDEX raw_requests_by_source ON raw_requests (source, id);
   CREATE INDEX raw_requests_finished ON raw_requests (finished_at) WHERE finished_at IS NOT NULL;
   CREATE INDEX raw_requests_reported ON raw_requests (id) WHERE state IN ('error', 'failed', 'lost', 'invalid') OR overdue = 1;
   CREATE TABLE raw_triggers (
     source TEXT NOT NULL,
     delivery_id TEXT NOT NULL,            -- a raw_processing.completed delivery that asked for the request
     request_id INTEGER NOT NULL,          -- raw_requests.id
     at INTEGER NOT NULL,
     PRIMARY KEY (source, delivery_id, request_id)
   ) WITHOUT ROWID;
   CREATE INDEX raw_triggers_by_request ON raw_triggers (request_id);
   CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  // Counters in one row (lib/counters.ts), as every object keeps them.
  COUNTER_SET_MIGRATION,
  COUNTER_HOURS_MIGRATION,
];
