import type { FC } from "hono/jsx";
import type { TrendPoint } from "../../lib/trends";

/**
 * Server-rendered SVG charts of hourly trends (GET /admin/trends' data): no client script, so the
 * pages' Content-Security-Policy stays as it is. One chart is one or two series over a fixed window
 * of hours, with a y axis (0, half, the maximum, in the series' unit), an x axis (the window's start,
 * middle and end, UTC), and the current hour's value written beside the title. Hours without a value
 * (a percentile of an hour with no deliveries) leave a gap.
 */

/** One line of a chart: which value of the trend points, its label, and its colour class. */
export interface Series {
  key: string;
  label: string;
  tone: "a" | "b";
}

export interface ChartProps {
  title: string;
  /** The unit of the values, shown on the y axis and with the current value (e.g. "per hour", "ms"). */
  unit: string;
  points: readonly TrendPoint[];
  series: readonly Series[];
}

const W = 520;
const H = 150;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

/** A chart's scale: the maximum shown on the y axis, never 0 so an empty chart still has axes. */
export function yMax(points: readonly TrendPoint[], series: readonly Series[]): number {
  let max = 0;
  for (const p of points) for (const s of series) max = Math.max(max, p.values[s.key] ?? 0);
  if (max <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((n) => n >= max)!;
  return nice;
}

/** The SVG path of one series: a line through the hours with a value, broken where an hour has none. */
export function seriesPath(points: readonly TrendPoint[], key: string, max: number): string {
  if (points.length === 0) return "";
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (points.length === 1 ? plotW : (i * plotW) / (points.length - 1));
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  let d = "";
  let pen = false;
  points.forEach((p, i) => {
    const v = p.values[key];
    if (v === null || v === undefined) return void (pen = false);
    d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  return d;
}

const fmt = (n: number): string => (Number.isInteger(n) ? n.toLocaleString("en-US") : n.toFixed(1));
const hourLabel = (ms: number, spanHours: number): string => {
  const iso = new Date(ms).toISOString();
  return spanHours > 48 ? `${iso.slice(5, 10)}` : `${iso.slice(11, 16)}`;
};

/** A line chart of hourly values. */
export const Chart: FC<ChartProps> = ({ title, unit, points, series }) => {
  const max = yMax(points, series);
  const last = points.at(-1);
  const current = series
    .map((s) => `${s.label} ${last?.values[s.key] === null || last?.values[s.key] === undefined ? "–" : fmt(last.values[s.key]!)}`)
    .join(", ");
  const plotH = H - PAD.top - PAD.bottom;
  const span = points.length;
  const ticks = span === 0 ? [] : [0, Math.floor((span - 1) / 2), span - 1].filter((v, i, a) => a.indexOf(v) === i);
  const plotW = W - PAD.left - PAD.right;
  const xOf = (i: number) => PAD.left + (span <= 1 ? plotW : (i * plotW) / (span - 1));
  const id = title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return (
    <figure class="chart">
      <figcaption>
        <strong>{title}</strong>{" "}
        <span class="muted">
          now: {current} ({unit})
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-labelledby={`${id}-t ${id}-d`}>
        <title id={`${id}-t`}>{title}</title>
        <desc id={`${id}-d`}>
          {span === 0
            ? "No data."
            : `${span} hours from ${new Date(points[0]!.at).toISOString()} to ${new Date(points[span - 1]!.at).toISOString()}, UTC; maximum shown ${fmt(max)} ${unit}; current hour: ${current}.`}
        </desc>
        <g class="axis">
          <line x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={PAD.top + plotH} />
          <line x1={PAD.left} y1={PAD.top + plotH} x2={W - PAD.right} y2={PAD.top + plotH} />
          {[0, max / 2, max].map((v) => (
            <text class="y-label" x={PAD.left - 4} y={PAD.top + plotH - (v / max) * plotH + 4} text-anchor="end">
              {fmt(v)}
            </text>
          ))}
          {ticks.map((i) => (
            <text class="x-label" x={xOf(i)} y={H - 6} text-anchor={i === 0 ? "start" : i === span - 1 ? "end" : "middle"}>
              {hourLabel(points[i]!.at, span)}
            </text>
          ))}
        </g>
        {span === 0 ? (
          <text class="empty" x={PAD.left + plotW / 2} y={PAD.top + plotH / 2} text-anchor="middle">
            no data yet
          </text>
        ) : (
          series.map((s) => <path class={`series series-${s.tone}`} d={seriesPath(points, s.key, max)} />)
        )}
      </svg>
      {series.length > 1 ? (
        <p class="legend">
          {series.map((s) => (
            <span class={`key key-${s.tone}`}>{s.label}</span>
          ))}
        </p>
      ) : null}
    </figure>
  );
};

/** The charts of a source: deliveries, duplicates and refusals per hour. */
export const SourceCharts: FC<{ day: readonly TrendPoint[]; week: readonly TrendPoint[] }> = ({ day, week }) => (
  <div class="charts">
    <Chart title="Deliveries, last 24 hours" unit="per hour" points={day} series={SOURCE_SERIES} />
    <Chart title="Deliveries, last 7 days" unit="per hour" points={week} series={SOURCE_SERIES} />
  </div>
);

/** The charts of a target: dispatches delivered and failed attempts, and latency p50/p99. */
export const TargetCharts: FC<{ day: readonly TrendPoint[]; week: readonly TrendPoint[] }> = ({ day, week }) => (
  <div class="charts">
    <Chart title="Delivered, last 24 hours" unit="per hour" points={day} series={TARGET_COUNTS} />
    <Chart title="Delivered, last 7 days" unit="per hour" points={week} series={TARGET_COUNTS} />
    <Chart title="Latency, last 24 hours" unit="ms, bucket bound" points={day} series={TARGET_LATENCY} />
    <Chart title="Latency, last 7 days" unit="ms, bucket bound" points={week} series={TARGET_LATENCY} />
  </div>
);

const SOURCE_SERIES: Series[] = [
  { key: "deliveries", label: "deliveries", tone: "a" },
  { key: "refusals", label: "refused", tone: "b" },
];
const TARGET_COUNTS: Series[] = [
  { key: "delivered", label: "delivered", tone: "a" },
  { key: "failedAttempts", label: "failed attempts", tone: "b" },
];
const TARGET_LATENCY: Series[] = [
  { key: "latencyP50Ms", label: "p50", tone: "a" },
  { key: "latencyP99Ms", label: "p99", tone: "b" },
];

/** Sums the same hours of several trends (the overview: every source's deliveries). */
export function sumTrends(trends: readonly (readonly TrendPoint[])[]): TrendPoint[] {
  const first = trends[0];
  if (!first) return [];
  return first.map((p, i) => {
    const values: Record<string, number | null> = {};
    for (const key of Object.keys(p.values)) values[key] = trends.reduce((n, t) => n + (t[i]?.values[key] ?? 0), 0);
    return { at: p.at, values };
  });
}

/** CSS of the charts (added to the page's nonce'd stylesheet). */
export const CHART_CSS = `.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
.chart{margin:0}.chart svg{max-width:100%;height:auto;background:var(--card)}
.chart .axis line{stroke:var(--line)}.chart text{font-size:10px;fill:var(--muted)}
.chart .series{fill:none;stroke-width:1.6}.chart .series-a{stroke:var(--accent)}.chart .series-b{stroke:var(--bad)}
.legend{font-size:12px;margin:2px 0}.key{margin-right:10px}.key::before{content:"";display:inline-block;width:10px;height:2px;margin-right:4px;vertical-align:middle}
.key-a::before{background:var(--accent)}.key-b::before{background:var(--bad)}`;
