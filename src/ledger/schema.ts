import { COUNTER_SET_MIGRATION } from "../lib/counters";

/**
 * Ledger SQLite schema, one database per source. Migrations are append-only: the index of a
 * migration is its version (see src/lib/migrate.ts). See docs/storage.md.
 */
export const LEDGER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE deliveries (
     seq INTEGER PRIMARY KEY,              -- position in the hash chain, 1-based, never reused
     delivery_id TEXT NOT NULL UNIQUE,     -- X-ActiGraph-Delivery, or derived (id_derived = 1)
     id_derived INTEGER NOT NULL,
     event TEXT,                           -- X-ActiGraph-Event as received; NULL when absent
     kind TEXT NOT NULL,                   -- normalized kind, e.g. upload.completed, unknown
     subject TEXT,                         -- studies/<study>/subjects/<subject>
     attention TEXT,                       -- why an operator should look; NULL when fine
     received_at INTEGER NOT NULL,         -- epoch ms, when the relay accepted it
     source_ip TEXT,
     headers TEXT NOT NULL,                -- JSON object, lower-case names, credentials redacted
     body BLOB NOT NULL,                   -- raw body, byte-exact
     body_sha256 TEXT NOT NULL,
     envelope TEXT NOT NULL,               -- CloudEvents JSON
     prev_hash TEXT NOT NULL,              -- record_hash of seq - 1 (64 zeros for seq 1)
     record_hash TEXT NOT NULL,
     duplicate_count INTEGER NOT NULL DEFAULT 0,
     last_seen_at INTEGER NOT NULL         -- epoch ms of the latest copy received
   );
   CREATE INDEX deliveries_by_kind ON deliveries (kind, seq);
   CREATE INDEX deliveries_by_subject ON deliveries (subject, seq);
   CREATE INDEX deliveries_by_time ON deliveries (received_at);
   CREATE TABLE handoffs (
     delivery_id TEXT NOT NULL,
     target_id TEXT NOT NULL,
     planned_at INTEGER NOT NULL,          -- epoch ms
     handed_at INTEGER,                    -- epoch ms the target's outbox acknowledged; NULL = pending
     tries INTEGER NOT NULL DEFAULT 0,
     next_at INTEGER NOT NULL,             -- epoch ms of the next push
     last_error TEXT,
     PRIMARY KEY (delivery_id, target_id)
   );
   CREATE INDEX handoffs_due ON handoffs (next_at) WHERE handed_at IS NULL;
   CREATE TABLE handshakes (
     id INTEGER PRIMARY KEY,
     received_at INTEGER NOT NULL,
     source_ip TEXT,
     webhook_id TEXT,
     delivery_id TEXT,
     authenticated INTEGER NOT NULL,       -- 1 when credentials were present and valid
     outcome TEXT NOT NULL                 -- echoed | refused: <reason>
   );
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  `CREATE TABLE counters (
     name TEXT PRIMARY KEY,                -- e.g. rejected:auth_mismatch
     value INTEGER NOT NULL
   );`,
  // Hash chain version 2 (ledger/chain.ts) and what it covers besides version 1's fields:
  //   chain_version    1 for rows written before version 2, else 2
  //   provenance       webhook | centrepoint-history
  //   same_body_as     an earlier delivery id of this source with the same body, within the horizon
  //   envelope_sha256  SHA-256 of envelope (version 2 rows; version 1 rows hash the text)
  // handoffs.unfiltered: 1 = planned while the target's document was invalid; its filter decides once it is valid.
  // (No SQL comments inside ALTER TABLE: SQLite keeps the column text in the table's schema.)
  `ALTER TABLE deliveries ADD COLUMN chain_version INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE deliveries ADD COLUMN provenance TEXT NOT NULL DEFAULT 'webhook';
   ALTER TABLE deliveries ADD COLUMN same_body_as TEXT;
   ALTER TABLE deliveries ADD COLUMN envelope_sha256 TEXT;
   CREATE INDEX deliveries_by_body ON deliveries (body_sha256, received_at);
   ALTER TABLE handoffs ADD COLUMN unfiltered INTEGER NOT NULL DEFAULT 0;`,
  // Exact-match search keys (upload id, tracking id, subject identifier, subject), filled for existing rows.
  `CREATE TABLE search_keys (
     value TEXT NOT NULL,
     seq INTEGER NOT NULL,                 -- deliveries.seq
     PRIMARY KEY (value, seq)
   ) WITHOUT ROWID;
   INSERT OR IGNORE INTO search_keys (value, seq) SELECT subject, seq FROM deliveries WHERE subject IS NOT NULL;
   INSERT OR IGNORE INTO search_keys (value, seq)
     SELECT CAST(json_extract(envelope, '$.data.uploadId') AS TEXT), seq FROM deliveries
     WHERE json_valid(envelope) AND json_type(envelope, '$.data.uploadId') IN ('text', 'integer', 'real');
   INSERT OR IGNORE INTO search_keys (value, seq)
     SELECT CAST(json_extract(envelope, '$.data.trackingId') AS TEXT), seq FROM deliveries
     WHERE json_valid(envelope) AND json_type(envelope, '$.data.trackingId') IN ('text', 'integer', 'real');
   INSERT OR IGNORE INTO search_keys (value, seq)
     SELECT CAST(json_extract(envelope, '$.data.subjectIdentifier') AS TEXT), seq FROM deliveries
     WHERE json_valid(envelope) AND json_type(envelope, '$.data.subjectIdentifier') IN ('text', 'integer', 'real');`,
  // Fewer index rows per delivery: a subject is found through search_keys (it is one), so its own
  // index went; kind, time, body hash and delivery id stay (queried by the list, the same-body check, dedupe).
  `DROP INDEX deliveries_by_subject;`,
  // The pull side (docs/pull.md), beside the hash-chained records, never changing them:
  //   handoffs.enrich  a row's pull plan (JSON, src/pull/plan.ts): a target's facts, or the Puller's job (target_id '@pull'); NULL = plain
  //   enrichments      the enrichment looked up once per delivery (src/ledger/enrichment.ts), one row per delivery that some target wants enriched
  //   downloads        one audit row per download through a relay file link (newest DOWNLOAD_LOG_CAP kept)
  `ALTER TABLE handoffs ADD COLUMN enrich TEXT;
   CREATE TABLE enrichments (
     delivery_id TEXT PRIMARY KEY,
     result TEXT NOT NULL,                 -- JSON StoredEnrichment (src/pull/facts.ts): facts found, errors, settled
     settled INTEGER NOT NULL DEFAULT 0,   -- 1 once no lookup will be retried
     released_at INTEGER,                  -- epoch ms an operator released held hand-offs without waiting
     updated_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE downloads (
     id INTEGER PRIMARY KEY,
     at INTEGER NOT NULL,                  -- epoch ms
     target_id TEXT NOT NULL,              -- the target the link was issued to
     file_id TEXT NOT NULL,                -- CentrePoint's data file id
     delivery_id TEXT,                     -- the data_retrieval delivery whose enrichment listed the file
     client_ip TEXT,                       -- CF-Connecting-IP of the download
     outcome TEXT NOT NULL                 -- redirected | upstream_error: <status>
   );
   CREATE INDEX downloads_by_delivery ON downloads (delivery_id, id);`,
  // Counters maintained on write (queries.ts COUNTER), so stats() and metrics() never scan history;
  // filled here from the rows so far.
  `INSERT OR REPLACE INTO counters (name, value) SELECT 'accepted:' || kind, COUNT(*) FROM deliveries GROUP BY kind;
   INSERT OR REPLACE INTO counters (name, value) SELECT 'duplicates:' || kind, SUM(duplicate_count) FROM deliveries GROUP BY kind;
   INSERT OR REPLACE INTO counters (name, value) SELECT 'attention', COUNT(*) FROM deliveries WHERE attention IS NOT NULL;
   INSERT OR REPLACE INTO counters (name, value) SELECT 'handoffs:pending', COUNT(*) FROM handoffs WHERE handed_at IS NULL;
   INSERT OR REPLACE INTO counters (name, value) SELECT 'handshakes:kept', COUNT(*) FROM handshakes;`,
  // Background work of the alarm (jobs.ts), one row per kind: archive, prune, verify.
  `CREATE TABLE jobs (
     kind TEXT PRIMARY KEY,                -- archive | prune | verify
     due_at INTEGER,                       -- epoch ms the alarm runs its next slice; NULL = nothing scheduled
     state TEXT NOT NULL DEFAULT '{}',     -- JSON progress (archive.ts, retention.ts, integrity.ts)
     last_run_at INTEGER,
     last_error TEXT                       -- why its last slice failed, NULL when it did not
   );`,
  // The ledger's archive in R2 (archive.ts): one row per segment written, with its manifest's figures.
  `CREATE TABLE segments (
     first_seq INTEGER PRIMARY KEY,
     last_seq INTEGER NOT NULL,
     key TEXT NOT NULL,                    -- R2 key of the NDJSON; the manifest's key ends in .manifest.json
     records INTEGER NOT NULL,
     bytes INTEGER NOT NULL,
     sha256 TEXT NOT NULL,                 -- of the segment file
     head_hash TEXT NOT NULL,              -- record_hash of last_seq
     archived_at INTEGER NOT NULL
   );`,
  // Retention (retention.ts) prunes a record's body and envelope once it is archived and old enough:
  // the NOT NULL columns keep an empty value and the digests stay, so the chain still verifies.
  //   body_pruned_at  epoch ms when body and envelope were pruned; NULL while they are stored
  //   body_bytes      the body's length before it was pruned
  // search_keys_by_seq: a removed record's keys go with it (retention).
  `ALTER TABLE deliveries ADD COLUMN body_pruned_at INTEGER;
   ALTER TABLE deliveries ADD COLUMN body_bytes INTEGER;
   CREATE INDEX search_keys_by_seq ON search_keys (seq);`,
  // The ids of records retention removed (retention.ts), kept PRUNED_ID_KEEP_MS after receipt (longer
  // than any reconciliation look-back): ingress answers a resend of one "duplicate", and reconciliation
  // never backfills one again. `duplicate_count` goes on counting copies received after removal.
  `CREATE TABLE pruned_ids (
     delivery_id TEXT PRIMARY KEY,
     seq INTEGER NOT NULL,
     kind TEXT NOT NULL,
     received_at INTEGER NOT NULL,
     duplicate_count INTEGER NOT NULL DEFAULT 0
   ) WITHOUT ROWID;
   CREATE INDEX pruned_ids_by_time ON pruned_ids (received_at);`,
  // Downloads through file links (enrichment.ts recordDownload): one row per link (target and file)
  // and outcome, counted, instead of a row per request, so repeated requests of one link cannot push
  // a genuine download out of the bounded log. Existing rows fold into the newest of their group.
  //   at / client_ip          the latest download's time and address
  //   first_at / first_ip     the first one's
  //   count                   downloads of the link with this outcome
  `ALTER TABLE downloads ADD COLUMN first_at INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE downloads ADD COLUMN first_ip TEXT;
   ALTER TABLE downloads ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
   CREATE INDEX downloads_fold ON downloads (target_id, file_id, outcome, id);
   UPDATE downloads SET
     first_at = (SELECT o.at FROM downloads o WHERE o.target_id = downloads.target_id AND o.file_id = downloads.file_id AND o.outcome = downloads.outcome ORDER BY o.id LIMIT 1),
     first_ip = (SELECT o.client_ip FROM downloads o WHERE o.target_id = downloads.target_id AND o.file_id = downloads.file_id AND o.outcome = downloads.outcome ORDER BY o.id LIMIT 1),
     count = (SELECT COUNT(*) FROM downloads o WHERE o.target_id = downloads.target_id AND o.file_id = downloads.file_id AND o.outcome = downloads.outcome)
   WHERE id = (SELECT MAX(o.id) FROM downloads o WHERE o.target_id = downloads.target_id AND o.file_id = downloads.file_id AND o.outcome = downloads.outcome);
   DELETE FROM downloads WHERE id < (SELECT MAX(o.id) FROM downloads o WHERE o.target_id = downloads.target_id AND o.file_id = downloads.file_id AND o.outcome = downloads.outcome);
   DROP INDEX downloads_fold;
   CREATE UNIQUE INDEX downloads_by_link ON downloads (target_id, file_id, outcome);
   CREATE INDEX downloads_by_time ON downloads (at);`,
  // Counters in one row (lib/counters.ts): a record's counter changes cost one row written, not one per counter.
  COUNTER_SET_MIGRATION,
  // Fewer rows written per hand-off (issue 17): the table keyed by (delivery id, target) itself
  // (WITHOUT ROWID: no separate key index), and no counter of pending hand-offs (stats() counts the
  // pending rows through handoffs_due), so a push marks its rows handed and writes nothing else.
  `CREATE TABLE handoffs_keyed (
     delivery_id TEXT NOT NULL,
     target_id TEXT NOT NULL,
     planned_at INTEGER NOT NULL,
     handed_at INTEGER,
     tries INTEGER NOT NULL DEFAULT 0,
     next_at INTEGER NOT NULL,
     last_error TEXT,
     unfiltered INTEGER NOT NULL DEFAULT 0,
     enrich TEXT,
     PRIMARY KEY (delivery_id, target_id)
   ) WITHOUT ROWID;
   INSERT INTO handoffs_keyed (delivery_id, target_id, planned_at, handed_at, tries, next_at, last_error, unfiltered, enrich)
     SELECT delivery_id, target_id, planned_at, handed_at, tries, next_at, last_error, unfiltered, enrich FROM handoffs;
   DROP TABLE handoffs;
   ALTER TABLE handoffs_keyed RENAME TO handoffs;
   CREATE INDEX handoffs_due ON handoffs (next_at) WHERE handed_at IS NULL;
   UPDATE counter_set SET data = json_remove(data, '$."handoffs:pending"');`,
];
