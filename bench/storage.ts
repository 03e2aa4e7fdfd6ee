/**
 * Reading a local runtime's Durable Object databases after a run (read-only, node:sqlite): sizes,
 * rows per table, and the database of one object. Shared by the benchmark and the profiler.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

/** Bytes of every file under `dir` (recursive). */
export function dirBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return total;
}

/** The SQLite files of one Durable Object class under a persist dir. */
export function doFiles(persistTo: string, className: string): string[] {
  const dir = join(persistTo, "v3", "do", `centrepoint-edge-relay-${className}`);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sqlite"))
    .map((f) => join(dir, f));
}

/** Rows and page bytes (dbstat) per table of one DO database, read-only; internal tables skipped. */
export function tableStats(file: string): { rows: Record<string, number>; bytes: Record<string, number>; fileBytes: number } {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all() as {
      name: string;
    }[];
    const rows: Record<string, number> = {};
    for (const { name } of tables) rows[name] = Number((db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).get() as { n: number }).n);
    const bytes: Record<string, number> = {};
    try {
      for (const r of db.prepare("SELECT name, SUM(pgsize) AS b FROM dbstat GROUP BY name").all() as { name: string; b: number }[]) bytes[r.name] = Number(r.b);
    } catch {
      /* dbstat not compiled in */
    }
    const wal = existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0;
    return { rows, bytes, fileBytes: statSync(file).size + wal };
  } finally {
    db.close();
  }
}

/** The DO database (of a class) holding a table with rows matching `probe`, e.g. the ledger of one source. */
export function findDo(persistTo: string, className: string, probe: string): string | null {
  for (const f of doFiles(persistTo, className)) {
    const db = new DatabaseSync(f, { readOnly: true });
    try {
      if (db.prepare(probe).get()) return f;
    } catch {
      /* other schema */
    } finally {
      db.close();
    }
  }
  return null;
}

/** How a DO database's pages are used (read-only): pages in the file, on the freelist, and the live bytes (cell payload) of every table and index. */
export function pageUse(file: string): { pageSize: number; pages: number; freePages: number; payloadBytes: number; usedPageBytes: number } {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const pragma = (name: string) => Number((db.prepare(`PRAGMA ${name}`).get() as Record<string, number>)[name]);
    const stat = db.prepare("SELECT COALESCE(SUM(payload), 0) AS payload, COALESCE(SUM(pgsize), 0) AS used FROM dbstat").get() as {
      payload: number;
      used: number;
    };
    return {
      pageSize: pragma("page_size"),
      pages: pragma("page_count"),
      freePages: pragma("freelist_count"),
      payloadBytes: Number(stat.payload),
      usedPageBytes: Number(stat.used),
    };
  } finally {
    db.close();
  }
}
