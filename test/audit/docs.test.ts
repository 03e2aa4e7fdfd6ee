import { describe, expect, it } from "vitest";
import auditDoc from "../../docs/audit.md?raw";

/** Every source file, as text (Vite's glob import, bundled into the test). */
const sources = import.meta.glob("../../src/**/*.{ts,tsx}", { query: "?raw", import: "default", eager: true }) as Record<string, string>;

describe("docs/audit.md", () => {
  it("names every action the code records", () => {
    const actions = new Set<string>();
    for (const text of Object.values(sources)) for (const m of text.matchAll(/action: "([a-z]+\.[a-z-]+)"/g)) actions.add(m[1]!);
    // Document actions are built from their kind (saveDocument / deleteDocument): `<kind>.put`, `<kind>.delete`.
    for (const kind of ["source", "target"]) for (const verb of ["put", "delete"]) actions.add(`${kind}.${verb}`);
    expect(actions.size).toBeGreaterThan(20);
    const missing = [...actions].filter((a) => !auditDoc.includes(`\`${a}\``)).sort();
    expect(missing).toEqual([]);
  });
});
