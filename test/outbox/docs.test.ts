/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import doc from "../../docs/delivery.md?raw";
import { retrySchema } from "../../src/config/schemas";
import { expectedSchedule } from "../../src/lib/backoff";

/** A duration as docs/delivery.md writes it: `45 s`, `7 min 30 s`, `26 h 08 min`. */
function formatMs(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 === 0 ? `${s / 60} min` : `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** The default schedule as the Markdown table of docs/delivery.md: the first 12 attempts and the last. */
function scheduleTable(): string {
  const rows = expectedSchedule(retrySchema.parse({}));
  const line = (r: (typeof rows)[number]) => `| ${r.attempt} | ${r.attempt === 1 ? "none" : formatMs(r.delayCapMs)} | ${formatMs(r.expectedAtMs)} |`;
  return [
    "| attempt | wait before it, at most | expected time since first planned |",
    "|---:|---:|---:|",
    ...rows.slice(0, 12).map(line),
    "| … | … | … |",
    line(rows[rows.length - 1]!),
  ].join("\n");
}

describe("docs/delivery.md", () => {
  it("shows the default schedule exactly as expectedSchedule computes it", () => {
    expect(doc, `expected this table in docs/delivery.md:\n${scheduleTable()}`).toContain(scheduleTable());
  });
});
