import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

/**
 * docs/prometheus/relay-rules.yml alerts on /admin/metrics: every metric name its expressions use
 * must be one the relay exports (src/admin/routes/metrics.ts and the families it renders), so a
 * renamed metric cannot leave a rule silently matching nothing. promtool checks the rules
 * themselves (.ci/run: promtool check rules, promtool test rules).
 */

const root = new URL("../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");

/** Metric names quoted in the files that build /admin/metrics. */
function exportedNames(): Set<string> {
  const files = [
    "src/admin/routes/metrics.ts",
    ...readdirSync(new URL("src/admin/routes/", root))
      .filter((f) => f.endsWith("-metrics.ts"))
      .map((f) => `src/admin/routes/${f}`),
    "src/admin/service/pull-metrics.ts",
  ];
  const names = new Set<string>();
  for (const f of files) for (const m of read(f).matchAll(/"(relay_[a-z0-9_]+)"/g)) names.add(m[1]!);
  return names;
}

/** Metric names in the rules' `expr:` lines (a histogram's _bucket/_sum/_count map to its family). */
function ruleNames(text: string): string[] {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const expr = /^\s*expr:\s*(.*)$/.exec(line);
    if (!expr) continue;
    for (const m of expr[1]!.matchAll(/\b(relay_[a-z0-9_]+)/g)) names.add(m[1]!.replace(/_(bucket|sum|count)$/, ""));
  }
  return [...names].sort();
}

test("every metric the Prometheus rules use is exported by /admin/metrics", () => {
  const exported = exportedNames();
  const used = ruleNames(read("docs/prometheus/relay-rules.yml"));
  assert.ok(used.length >= 10, `expected the rules to use the relay's metrics, found ${used.join(", ")}`);
  assert.deepEqual(
    used.filter((n) => !exported.has(n)),
    [],
  );
});

test("the check sees a metric name that is not exported", () => {
  assert.deepEqual(ruleNames("      - alert: X\n        expr: relay_no_such_metric > 0\n"), ["relay_no_such_metric"]);
  assert.equal(exportedNames().has("relay_no_such_metric"), false);
});
