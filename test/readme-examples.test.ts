import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/store";
import readme from "../README.md?raw";

/** JSON documents shown in README.md, so the examples keep matching the schemas. */
describe("README examples", () => {
  it("shows source and target documents the schemas accept", () => {
    const sources = [...readme.matchAll(/'(\{"auth":[^']+\})'/g)].map((m) => JSON.parse(m[1]!));
    const target = /-d '(\{"url":[^']+\})'/s.exec(readme)?.[1];
    expect(sources.length).toBeGreaterThan(1);
    for (const doc of sources) expect(parseConfig("source", doc)).toMatchObject({ ok: true });
    expect(parseConfig("target", JSON.parse(target!))).toMatchObject({ ok: true });
  });

  it("shows the centrepoint block's defaults as the schema fills them in", () => {
    const parsed = parseConfig("source", { auth: { type: "none" }, centrepoint: { studyId: 1, webhookId: 2, clientIdEnv: "A", clientSecretEnv: "B" } });
    const block = parsed.ok ? parsed.value.centrepoint : undefined;
    expect(block).toBeDefined();
    expect(readme).toContain(`| \`apiUrl\` | \`"${block!.apiUrl}"\` |`);
    expect(readme).toContain(`| \`authUrl\` | \`"${block!.authUrl}"\` |`);
    expect(readme).toContain(`| \`reconcile.everyMinutes\` | \`${block!.reconcile.everyMinutes}\` |`);
    expect(readme).toContain(`| \`reconcile.lookbackHours\` | \`${block!.reconcile.lookbackHours}\` |`);
  });

  it("shows the pull fields' defaults as the schemas fill them in, and target examples the schema accepts", () => {
    const parsed = parseConfig("target", { url: "https://edc.example/x" });
    const t = parsed.ok ? parsed.value : undefined;
    expect(readme).toContain(`| \`enrich\` | \`${JSON.stringify(t!.enrich)}\` |`);
    expect(readme).toContain(`| \`enrichRequired\` | \`${t!.enrichRequired}\` |`);
    expect(readme).toContain(`| \`enrichDeadlineMs\` | \`${t!.enrichDeadlineMs}\` |`);
    expect(readme).toContain(`| \`linkTtlHours\` | \`${t!.linkTtlHours}\` |`);
    const targets = [...readme.matchAll(/-d '(\{"url":[^']+\})'/g)].map((m) => JSON.parse(m[1]!));
    expect(targets.some((doc) => Array.isArray(doc.enrich) && doc.enrich.length === 3)).toBe(true);
    for (const doc of targets) expect(parseConfig("target", doc)).toMatchObject({ ok: true });
  });

  it("shows retry and breaker defaults the schemas accept", () => {
    const retry = /`(\{"baseDelayMs":[^`]+\})`/.exec(readme)?.[1];
    const breaker = /`(\{"threshold":[^`]+\})`/.exec(readme)?.[1];
    const parsed = parseConfig("target", { url: "https://edc.example/x", retry: JSON.parse(retry!), breaker: JSON.parse(breaker!) });
    expect(parsed).toMatchObject({ ok: true });
    // The README shows the defaults: parsing an empty document gives the same values.
    const defaults = parseConfig("target", { url: "https://edc.example/x" });
    expect(defaults.ok && parsed.ok && { retry: defaults.value.retry, breaker: defaults.value.breaker }).toEqual(
      parsed.ok && { retry: parsed.value.retry, breaker: parsed.value.breaker },
    );
  });
});
