/**
 * The subject cache of one CentrePoint API client (docs/pull.md, "Cache"): a subject's identifiers
 * and time zone, looked up at most once per SUBJECT_TTL_MS per subject. Only the minimised
 * `SubjectFact` is stored; nothing personal ever reaches this table.
 */
import type { SubjectFact } from "./facts";

/** How long a looked-up subject is used before it is looked up again (24 h: a site or identifier change shows within a day). */
export const SUBJECT_TTL_MS = 24 * 3_600_000;
/** Most subjects cached per client (the oldest lookups are dropped past it). */
export const SUBJECT_CACHE_CAP = 50_000;

/** A cached subject looked up after `freshAfter` (epoch ms), or null. */
export function readSubject(sql: SqlStorage, studyId: string, subjectId: string, freshAfter: number): SubjectFact | null {
  const row = sql
    .exec<{ fact: string }>("SELECT fact FROM subjects WHERE study_id = ? AND subject_id = ? AND fetched_at > ?", studyId, subjectId, freshAfter)
    .toArray()[0];
  return row ? (JSON.parse(row.fact) as SubjectFact) : null;
}

/** Caches a subject; keeps at most `cap` rows. */
export function writeSubject(sql: SqlStorage, studyId: string, subjectId: string, fact: SubjectFact, now: number, cap = SUBJECT_CACHE_CAP): void {
  sql.exec("INSERT OR REPLACE INTO subjects (study_id, subject_id, fact, fetched_at) VALUES (?, ?, ?, ?)", studyId, subjectId, JSON.stringify(fact), now);
  const excess = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM subjects").one().n - cap;
  if (excess > 0)
    sql.exec("DELETE FROM subjects WHERE (study_id, subject_id) IN (SELECT study_id, subject_id FROM subjects ORDER BY fetched_at LIMIT ?)", excess);
}

/** Drops subjects past their lifetime (at most `limit` per call). */
export function pruneSubjects(sql: SqlStorage, now: number, limit = 500): number {
  return sql.exec(
    "DELETE FROM subjects WHERE (study_id, subject_id) IN (SELECT study_id, subject_id FROM subjects WHERE fetched_at <= ? ORDER BY fetched_at LIMIT ?)",
    now - SUBJECT_TTL_MS,
    limit,
  ).rowsWritten;
}
