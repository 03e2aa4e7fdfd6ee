import { describe, expect, it } from "vitest";
import { histogramSamples, renderPrometheus } from "../../src/lib/prometheus";

describe("Prometheus text format", () => {
  it("renders HELP, TYPE and samples with escaped labels", () => {
    const text = renderPrometheus([{ name: "x_total", help: "things", type: "counter", samples: [{ labels: { a: 'q"u\\o\nte' }, value: 3 }] }]);
    expect(text).toBe('# HELP x_total things\n# TYPE x_total counter\nx_total{a="q\\"u\\\\o\\nte"} 3\n');
  });

  it("makes histogram buckets cumulative and ends with +Inf, sum and count", () => {
    const samples = histogramSamples({ t: "a" }, [0.1, 1], [2, 3, 1], 4.5);
    expect(samples.map((s) => [s.suffix, s.labels.le, s.value])).toEqual([
      ["_bucket", "0.1", 2],
      ["_bucket", "1", 5],
      ["_bucket", "+Inf", 6],
      ["_sum", undefined, 4.5],
      ["_count", undefined, 6],
    ]);
  });
});
