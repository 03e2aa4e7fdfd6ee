/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import dashboardDoc from "../../docs/dashboard.md?raw";
import deliveryDoc from "../../docs/delivery.md?raw";
import securityDoc from "../../docs/security.md?raw";
import storageDoc from "../../docs/storage.md?raw";
import readme from "../../README.md?raw";
import wranglerToml from "../../wrangler.toml?raw";
import { reconcileScheduleSchema } from "../../src/config/schemas";
import { BATCH_PER_SLOT, MIN_BATCH } from "../../src/outbox/outbox";

/**
 * Review round 2, finding 12: README, delivery.md, dashboard.md and storage.md said things the code
 * does not do. Each check reads the claim from the document and compares it with the code.
 */

/** Every test file, as a path from the repository root (a glob leaves out the file it is in). */
const testFiles = Object.keys(import.meta.glob(["/test/**/*.test.ts", "/test-node/**/*.test.ts"]))
  .map((p) => p.slice(1))
  .concat("test/docs/docs-drift.r2-12.test.ts");
const sources = import.meta.glob("../../src/**/*.ts", { query: "?raw", import: "default", eager: true }) as Record<string, string>;

/** The Markdown table that starts on the line after `heading` (text before it), as its lines up to the first line that is not a row. */
function tableAfter(doc: string, heading: string): string[] {
  const at = doc.indexOf(heading);
  expect(at, `the document has "${heading}"`).toBeGreaterThanOrEqual(0);
  const lines = doc.slice(at).split("\n").slice(1);
  const start = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith("|")) break;
    rows.push(line);
  }
  return rows;
}

describe("README.md", () => {
  it("gives reconcile.everyMinutes the range the schema accepts", () => {
    const row = readme.split("\n").find((l) => l.startsWith("| `reconcile.everyMinutes` |"));
    expect(row).toBeDefined();
    expect(row).not.toMatch(/rounded up/);
    const range = /`0` \(off\) or (\d+) to ([\d,]+)/.exec(row!);
    expect(range, "the row states `0` (off) or N to M").not.toBeNull();
    const [low, high] = [Number(range![1]), Number(range![2]!.replace(/,/g, ""))];
    const accepts = (n: number) => reconcileScheduleSchema.safeParse({ everyMinutes: n }).success;
    expect([accepts(0), accepts(low - 1), accepts(low), accepts(high), accepts(high + 1)]).toEqual([true, false, true, true, false]);
  });

  it("calls a class file thin only when it is (at most 400 lines, or under the bound the README states)", () => {
    const thin = [...readme.matchAll(/(\w[\w-]*\.ts) \(thin class(?:, under (\d+) lines)?/g)].map((m) => ({ file: m[1]!, under: m[2] }));
    expect(thin.length).toBeGreaterThan(0);
    for (const { file, under } of thin) {
      const [path, text] = Object.entries(sources).find(([p]) => p.endsWith(`/${file}`)) ?? [];
      expect(path, file).toBeDefined();
      const lines = text!.split("\n").length;
      if (under === undefined) expect(lines, `${path} is called a thin class`).toBeLessThanOrEqual(400);
      else expect(lines, `${path} is called a thin class under ${under} lines`).toBeLessThan(Number(under));
    }
    // Issue 17: the ledger's class, once 765 lines doing five jobs, stays a thin class under 300 lines.
    const ledger = thin.find((t) => t.file === "ledger.ts");
    expect(ledger, "README calls ledger.ts a thin class").toBeDefined();
    expect(Number(ledger!.under), "with a bound of at most 300 lines").toBeLessThanOrEqual(300);
  });
});

describe("docs/delivery.md", () => {
  it("states the outbox's batch size as the code computes it", () => {
    expect(deliveryDoc).toContain(`max(${MIN_BATCH}, ${BATCH_PER_SLOT} × \`concurrency\`)`);
  });

  it("lists every public RPC method of the Outbox in one unbroken table", () => {
    const rows = tableAfter(deliveryDoc, "RPC API");
    const documented = rows.slice(2).map((r) => /^\| `(\w+)\(/.exec(r)?.[1]);
    const outbox = Object.entries(sources).find(([p]) => p.endsWith("/outbox/outbox.ts"))![1];
    const methods = [...outbox.matchAll(/^ {2}async (\w+)\(/gm)].map((m) => m[1]!);
    expect(methods.length).toBeGreaterThan(5);
    expect(documented.sort()).toEqual([...methods].sort());
  });
});

describe("docs/dashboard.md", () => {
  it("describes the sign-in guard the code has, not 'no attempt counter'", () => {
    expect(sources["../../src/admin/sign-in-guard.ts"]).toBeDefined();
    expect(dashboardDoc).not.toMatch(/no attempt counter/i);
    expect(dashboardDoc).toContain("src/admin/sign-in-guard.ts");
  });
});

describe("docs/storage.md", () => {
  it("has a row in its store table for every binding in wrangler.toml that holds state", () => {
    const bindings = [...wranglerToml.matchAll(/^\[\[(kv_namespaces|durable_objects\.bindings|r2_buckets)\]\]\n(?:.*\n)*?(?:binding|name) = "(\w+)"/gm)].map(
      (m) => m[2]!,
    );
    expect(bindings).toEqual(expect.arrayContaining(["CONFIG", "LEDGER", "OUTBOX", "ARCHIVE"]));
    const rows = tableAfter(storageDoc, "| store | binding |").join("\n");
    for (const binding of bindings) expect(rows, binding).toContain(`| \`${binding}\` |`);
  });
});

describe("docs/security.md", () => {
  it("names only test files that exist", () => {
    const named = [...securityDoc.matchAll(/`((?:test|test-node)\/[\w/.-]+\.test\.ts)`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(20);
    for (const file of new Set(named)) expect(testFiles, file).toContain(file);
  });
});
