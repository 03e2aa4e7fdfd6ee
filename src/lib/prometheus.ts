/** One sample of a metric family: label set and value. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
  /** Suffix for histogram parts: `_bucket`, `_sum`, `_count`. */
  suffix?: string;
}

/** A metric family in the Prometheus text exposition format 0.0.4. */
export interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  samples: Sample[];
}

/** Content type of the Prometheus text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/** Renders families as Prometheus text; label values are escaped, families never repeat. */
export function renderPrometheus(families: readonly Family[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(",");
      lines.push(`${f.name}${s.suffix ?? ""}${labels ? `{${labels}}` : ""} ${formatValue(s.value)}`);
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * Histogram samples from per-bucket counts (`counts[i]` = observations ≤ `bounds[i]`, not
 * cumulative; the last entry of `counts` is the +Inf overflow) and the sum of observations.
 */
export function histogramSamples(labels: Record<string, string>, bounds: readonly number[], counts: readonly number[], sum: number): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  bounds.forEach((le, i) => {
    cumulative += counts[i] ?? 0;
    samples.push({ labels: { ...labels, le: String(le) }, value: cumulative, suffix: "_bucket" });
  });
  cumulative += counts[bounds.length] ?? 0;
  samples.push({ labels: { ...labels, le: "+Inf" }, value: cumulative, suffix: "_bucket" });
  samples.push({ labels, value: sum, suffix: "_sum" }, { labels, value: cumulative, suffix: "_count" });
  return samples;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}
