import { describe, expect, it } from "vitest";
import readme from "../../README.md?raw";
import rules from "../../docs/prometheus/relay-rules.yml?raw";
import { parseConfig } from "../../src/config/store";

describe("README: alert channels", () => {
  it("shows one channel document of each type, each one the schema accepts", () => {
    const docs = [...readme.matchAll(/-d '(\{"type":[^']+\})'/g)].map((m) => JSON.parse(m[1]!) as { type: string });
    expect(docs.map((d) => d.type).sort()).toEqual(["email", "slack", "webhook"]);
    for (const doc of docs) expect(parseConfig("alert", doc)).toMatchObject({ ok: true });
  });

  it("shows the filters' defaults as the schema fills them in", () => {
    const parsed = parseConfig("alert", { type: "slack", urlEnv: "X" });
    expect(parsed.ok).toBe(true);
    const c = parsed.ok ? parsed.value : undefined;
    expect(readme).toContain(`| \`severity\` | \`"${c!.severity}"\` |`);
    expect(readme).toContain(`| \`conditions\` | \`${JSON.stringify(c!.conditions)}\` |`);
    expect(readme).toContain(`| \`objects\` | \`${JSON.stringify(c!.objects)}\` |`);
    expect(readme).toContain(`| \`enabled\` | \`${c!.enabled}\` |`);
  });

  it("the Prometheus rules cover the issue conditions the README and issue 19 name", () => {
    const conditions = [...rules.matchAll(/condition: ([a-z_]+)/g)].map((m) => m[1]);
    for (const c of [
      "dead_letters",
      "breaker_open",
      "backlog_age",
      "held",
      "refused_deliveries",
      "registration_mismatch",
      "reconcile_failed",
      "reconcile_backfilled",
      "centrepoint_auth_failed",
      "enrichment_failed",
      "raw_request_failed",
      "integrity_failed",
      "archive_halted",
    ])
      expect(conditions).toContain(c);
  });
});
