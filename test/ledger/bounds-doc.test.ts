/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import storageDoc from "../../docs/storage.md?raw";
import { LEDGER_MIGRATIONS } from "../../src/ledger/schema";
import { OUTBOX_MIGRATIONS } from "../../src/outbox/schema";

/** Every table the migrations create (under its final name; not one dropped for good) has a row in docs/storage.md's Bounds table. */
function tables(migrations: readonly string[]): string[] {
  const all = migrations.join("\n");
  const created = [...all.matchAll(/CREATE TABLE (\w+)/g)].map((m) => m[1]!);
  const renamed = new Map([...all.matchAll(/ALTER TABLE (\w+) RENAME TO (\w+)/g)].map((m) => [m[1]!, m[2]!]));
  const dropped = new Set([...all.matchAll(/DROP TABLE (\w+)/g)].map((m) => m[1]!));
  const renamedTo = new Set(renamed.values());
  return [...new Set(created.map((t) => renamed.get(t) ?? t))].filter((t) => !dropped.has(t) || renamedTo.has(t));
}

describe("docs/storage.md, Bounds", () => {
  const bounds = storageDoc.slice(storageDoc.indexOf("## Bounds"), storageDoc.indexOf("\n## ", storageDoc.indexOf("## Bounds") + 1));

  it("names a bound for every ledger table", () => {
    expect(tables(LEDGER_MIGRATIONS).length).toBeGreaterThan(7);
    for (const t of tables(LEDGER_MIGRATIONS)) expect(bounds, t).toContain(`| ledger \`${t}\` |`);
  });

  it("names a bound for every outbox table", () => {
    for (const t of tables(OUTBOX_MIGRATIONS)) expect(bounds, t).toContain(`| outbox \`${t}\` |`);
  });
});
