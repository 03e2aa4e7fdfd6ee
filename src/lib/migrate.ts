/**
 * Applies append-only SQL migrations to a Durable Object's SQLite database; the index of a
 * migration is its version, kept in `_schema` (Durable Object SQLite forbids PRAGMA
 * user_version). Call inside `blockConcurrencyWhile` in the constructor.
 */
export function migrate(storage: DurableObjectStorage, migrations: readonly string[]): void {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS _schema (version INTEGER NOT NULL)");
  const row = sql.exec("SELECT version FROM _schema").toArray()[0];
  const version = (row?.version as number | undefined) ?? 0;
  for (let v = version; v < migrations.length; v++) {
    storage.transactionSync(() => {
      sql.exec(migrations[v]!);
      sql.exec("DELETE FROM _schema");
      sql.exec("INSERT INTO _schema (version) VALUES (?)", v + 1);
    });
  }
}
