import { existsSync, readFileSync, writeFileSync } from "node:fs";

/**
 * Writes a benchmark's generated section into a document: the text between `begin` and `end`
 * (markers included) is replaced and the rest of the file kept; without the markers, `whenMissing`
 * says what the file becomes (given what it holds, possibly nothing).
 */
export function writeSection(path: string, begin: string, end: string, generated: string, whenMissing: (existing: string) => string): void {
  const existing = existsSync(path) ? readFileSync(path, "utf8") : "";
  writeFileSync(
    path,
    existing.includes(begin) && existing.includes(end)
      ? existing.slice(0, existing.indexOf(begin)) + generated + existing.slice(existing.indexOf(end) + end.length)
      : whenMissing(existing),
  );
}
