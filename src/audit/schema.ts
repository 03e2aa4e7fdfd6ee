/**
 * The audit trail's SQLite schema (one AuditTrail Durable Object for the whole relay), applied by
 * lib/migrate.ts. Entries are append-only: triggers refuse every UPDATE and DELETE of `entries`,
 * and no retention touches them (docs/audit.md).
 */
export const AUDIT_MIGRATIONS: readonly string[] = [
  `CREATE TABLE entries (
     seq INTEGER PRIMARY KEY,          -- 1, 2, 3 ... without gaps
     at INTEGER NOT NULL,              -- epoch ms
     actor TEXT NOT NULL,
     role TEXT NOT NULL,
     via TEXT NOT NULL,                -- api | dashboard | cron | system
     action TEXT NOT NULL,             -- <object>.<verb>
     object TEXT,                      -- JSON object of ids, or null
     reason TEXT,
     request_id TEXT,
     address TEXT,
     before TEXT,                      -- JSON of a configuration document (secret names only), or null
     after TEXT,
     chain_version INTEGER NOT NULL,
     prev_hash TEXT NOT NULL,
     entry_hash TEXT NOT NULL          -- audit/format.ts auditLink
   );
   CREATE INDEX entries_by_at ON entries (at);
   CREATE INDEX entries_by_actor ON entries (actor, seq);
   CREATE INDEX entries_by_action ON entries (action, seq);
   -- Each id an entry concerns, bare ("s1") and typed ("source:s1"), for the object filter.
   CREATE TABLE entry_objects (value TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (value, seq)) WITHOUT ROWID;
   CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
   CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
   -- JSON state by key: the archive's progress, the verification checkpoint.
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
];
