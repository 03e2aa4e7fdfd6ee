import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

/**
 * A Durable Object SQLite statement binds at most 100 parameters, so an `IN (...)` list built from a
 * JS array must go through src/lib/sql.ts: `placeholders(chunk)` over a `chunk` of `inChunks(...)`.
 * The other interpolated form allowed is a sub-select held in a constant (`const chosen = "SELECT ..."`).
 */

const SRC = join(import.meta.dirname, "..", "src");

/** Every .ts file under src/, as [path relative to src, text]. */
function sources(): [string, string][] {
  return readdirSync(SRC, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => [f, readFileSync(join(SRC, f), "utf8")]);
}

/** The text of `${...}` starting at `open` (the index of `${`), braces balanced. */
function interpolation(text: string, open: number): string {
  let depth = 0;
  for (let i = open + 1; i < text.length && i < open + 2_000; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(open + 2, i).trim();
  }
  return text.slice(open + 2, open + 80);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Why an interpolated `IN (${expr})` at `at` may exceed the limit, or null when it cannot. */
function problemOf(text: string, at: number, expr: string): string | null {
  const before = text.slice(Math.max(0, text.lastIndexOf("\n", at - 1) - 1_500), at);
  const chunk = /^placeholders\((\w+)\)$/.exec(expr)?.[1];
  if (chunk !== undefined) {
    const v = escape(chunk);
    const bound = new RegExp(`(?:const|let)\\s+${v}\\s+of\\s+inChunks\\(|inChunks\\([^;]*?\\)\\s*\\.(?:flatMap|map|forEach)\\(\\s*\\(?\\s*${v}\\s*\\)?\\s*=>`);
    return bound.test(before) ? null : `placeholders(${chunk}) where ${chunk} is not a chunk of inChunks(...)`;
  }
  if (/^\w+$/.test(expr) && new RegExp(`const\\s+${escape(expr)}\\s*=\\s*["'\`]\\s*SELECT\\b`).test(text)) return null;
  return `\${${expr}} is neither placeholders(<a chunk of inChunks>) nor a constant sub-select`;
}

/** Every finding in one file's text: `file:line: what`. */
export function findUnchunkedInLists(file: string, text: string): string[] {
  const out: string[] = [];
  const line = (i: number) => text.slice(0, i).split("\n").length;
  for (const m of text.matchAll(/\bIN\s*\(\s*\$\{/gi)) {
    const open = m.index + m[0].length - 2;
    const problem = problemOf(text, m.index, interpolation(text, open));
    if (problem !== null) out.push(`${file}:${line(m.index)}: ${problem}`);
  }
  if (file !== join("lib", "sql.ts"))
    for (const m of text.matchAll(/\.map\(\s*\(\)\s*=>\s*["']\?["']\s*\)/g)) out.push(`${file}:${line(m.index)}: a placeholder list built by hand`);
  return out;
}

test("every IN (...) list in src/ built from a JS array goes through inChunks and placeholders", () => {
  const files = sources();
  assert.ok(files.length > 20, "src/ was read");
  assert.deepEqual(
    files.flatMap(([f, text]) => findUnchunkedInLists(f, text)),
    [],
  );
});

test("the check finds an unchunked list, a hand-built one and a placeholders() of a whole array, and passes the allowed forms", () => {
  const bad = [
    'const list = ids.map(() => "?").join(",");\nsql.exec(`DELETE FROM t WHERE id IN (${list})`, ...ids);',
    "sql.exec(`SELECT * FROM t WHERE id IN (${placeholders(ids)})`, ...ids);",
    "sql.exec(`SELECT * FROM t WHERE id in (${ids.join(',')})`);",
  ];
  for (const text of bad) assert.equal(findUnchunkedInLists("x.ts", text).length > 0, true, text);
  const good = [
    "for (const chunk of inChunks(ids)) sql.exec(`DELETE FROM t WHERE id IN (${placeholders(chunk)})`, ...chunk);",
    "return inChunks(ids, 1).flatMap((chunk) =>\n  sql.exec(`SELECT * FROM t WHERE a = ? AND id IN (${placeholders(chunk)})`, a, ...chunk).toArray());",
    'const chosen = "SELECT seq FROM d LIMIT ?";\nsql.exec(`DELETE FROM a WHERE seq IN (${chosen})`, 5);',
    "sql.exec(\"SELECT * FROM t WHERE state IN ('a', 'b') AND id IN (SELECT id FROM u)\");",
  ];
  for (const text of good) assert.deepEqual(findUnchunkedInLists("x.ts", text), [], text);
});
