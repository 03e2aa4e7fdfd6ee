import { describe, expect, it } from "vitest";
import { Chart, seriesPath, sumTrends, yMax } from "../../src/admin/dashboard/charts";
import type { TrendPoint } from "../../src/lib/trends";
import { freshId, putSource } from "../support/helpers";
import { get, signIn } from "../support/session";

/** The dashboard's SVG charts (src/admin/dashboard/charts.tsx): no data, one point, a full week. */
const HOUR = 3_600_000;
const T = Date.UTC(2026, 11, 1);
const series = [{ key: "deliveries", label: "deliveries", tone: "a" as const }];
const render = (points: TrendPoint[]) => String(Chart({ title: "Deliveries, last 7 days", unit: "per hour", points, series }));
const hours = (n: number, value: (i: number) => number | null): TrendPoint[] =>
  Array.from({ length: n }, (_, i) => ({ at: T + i * HOUR, values: { deliveries: value(i) } }));

describe("charts", () => {
  it("render with no data: axes, a 'no data yet' note, no line", () => {
    const svg = render([]);
    expect(svg).toContain("<svg");
    expect(svg).toContain("no data yet");
    expect(svg).toContain("<title");
    expect(svg).toContain("No data.");
    expect(svg).not.toContain('class="series');
  });

  it("render one point: its value as the current one and a one-point line", () => {
    const svg = render(hours(1, () => 7));
    expect(svg).toContain("now: deliveries 7 (per hour)");
    expect(svg.match(/<path class="series series-a" d="M[\d.]+,[\d.]+"/g)).toHaveLength(1);
  });

  it("render a full week: 168 hours, axis labels at start, middle and end, the maximum on the y axis", () => {
    const svg = render(hours(168, (i) => (i === 100 ? 40 : i % 5)));
    expect(svg).toContain("168 hours from 2026-12-01T00:00:00.000Z to 2026-12-07T23:00:00.000Z");
    expect(svg.match(/class="x-label"/g)).toHaveLength(3);
    expect(svg).toContain(">12-01<");
    expect(svg).toContain(">12-07<");
    expect(svg).toMatch(/class="y-label"[^>]*>50</); // 40 rounds up to a nice 50
    const d = seriesPath(
      hours(168, (i) => i % 5),
      "deliveries",
      5,
    );
    expect(d.match(/[ML]/g)).toHaveLength(168);
  });

  it("leave a gap where an hour has no value, and scale an all-zero chart to 1", () => {
    expect(
      seriesPath(
        hours(3, (i) => (i === 1 ? null : 1)),
        "deliveries",
        1,
      ).match(/M/g),
    ).toHaveLength(2);
    expect(
      yMax(
        hours(3, () => 0),
        series,
      ),
    ).toBe(1);
  });

  it("sum several sources hour by hour", () => {
    expect(sumTrends([hours(2, () => 1), hours(2, (i) => i)]).map((p) => p.values.deliveries)).toEqual([1, 2]);
  });

  it("appear on a source's page without any client script", async () => {
    const source = freshId();
    await putSource(source);
    const html = await (await get(`/admin/ui/sources/${source}`, await signIn())).text();
    expect(html).toContain("Deliveries, last 24 hours");
    expect(html).toContain("Deliveries, last 7 days");
    expect(html).not.toContain("<script");
  });
});
