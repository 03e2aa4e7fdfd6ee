import { percentile } from "../stats.ts";

/** What a request should get: a new delivery `accepted`, a re-send `duplicate`, wrong credentials `rejected` (401). */
export type Expectation = "accepted" | "duplicate" | "rejected";

/** What a request got; `error` is no HTTP response at all (refused, reset, timeout). */
export type Outcome = "accepted" | "duplicate" | "rejected" | "error";

/** One response, as the summary counts it. */
export interface ResponseRecord {
  deliveryId: string;
  expected: Expectation;
  /** HTTP status, or null without a response. */
  status: number | null;
  outcome: Outcome;
  /** True when the outcome is the expected one. */
  ok: boolean;
  latencyMs: number;
  /** Short description of an unexpected response (status and start of the body, or the error). */
  detail?: string;
}

/** Result of the validation handshake. */
export interface HandshakeResult {
  status: "ok" | "failed" | "skipped";
  httpStatus?: number;
  detail?: string;
}

/** The end-of-run summary (`--json` prints exactly this). */
export interface Summary {
  ok: boolean;
  url: string;
  seed: number;
  handshake: HandshakeResult;
  sent: number;
  byStatus: Record<string, number>;
  accepted: number;
  duplicate: number;
  rejected: { expected: number; unexpected: number };
  errors: number;
  unexpected: number;
  latencyMs: { p50: number; p99: number; max: number };
  durationMs: number;
  /** Distinct delivery ids the relay accepted (not counting duplicates): what targets must receive. */
  acceptedIds: string[];
  /** The first unexpected responses, for diagnosis. */
  failures: { deliveryId: string; expected: Expectation; got: string }[];
}

/** Classifies one response: 2xx with `"status":"duplicate"` is a duplicate, other 2xx accepted, others rejected. */
export function classifyResponse(expected: Expectation, status: number | null, body: string): { outcome: Outcome; ok: boolean } {
  if (status === null) return { outcome: "error", ok: false };
  if (status >= 200 && status < 300) {
    const outcome = bodyStatus(body) === "duplicate" ? "duplicate" : "accepted";
    return { outcome, ok: outcome === expected };
  }
  return { outcome: "rejected", ok: expected === "rejected" && status === 401 };
}

/** The `status` field of a JSON response body, if any. */
export function bodyStatus(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === "object" && parsed !== null && "status" in parsed && typeof parsed.status === "string" ? parsed.status : undefined;
  } catch {
    return undefined;
  }
}

/** Counts per HTTP status, with `error` for requests that got no response. */
export function countByStatus(records: readonly ResponseRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) {
    const key = r.status === null ? "error" : String(r.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const MAX_FAILURES_LISTED = 20;

/** Builds the summary of a run from its responses. */
export function summarize(records: readonly ResponseRecord[], run: { url: string; seed: number; handshake: HandshakeResult; durationMs: number }): Summary {
  const count = (outcome: Outcome, ok?: boolean) => records.filter((r) => r.outcome === outcome && (ok === undefined || r.ok === ok)).length;
  const latencies = records.filter((r) => r.status !== null).map((r) => r.latencyMs);
  const unexpected = records.filter((r) => !r.ok);
  return {
    ok: run.handshake.status !== "failed" && unexpected.length === 0,
    url: run.url,
    seed: run.seed,
    handshake: run.handshake,
    sent: records.length,
    byStatus: countByStatus(records),
    accepted: count("accepted"),
    duplicate: count("duplicate"),
    rejected: { expected: count("rejected", true), unexpected: count("rejected", false) },
    errors: count("error"),
    unexpected: unexpected.length,
    latencyMs: { p50: latencyOf(latencies, 50), p99: latencyOf(latencies, 99), max: round(latencies.reduce((a, b) => Math.max(a, b), 0)) },
    durationMs: Math.round(run.durationMs),
    acceptedIds: [...new Set(records.filter((r) => r.outcome === "accepted").map((r) => r.deliveryId))],
    failures: unexpected.slice(0, MAX_FAILURES_LISTED).map((r) => ({ deliveryId: r.deliveryId, expected: r.expected, got: r.detail ?? r.outcome })),
  };
}

const round = (ms: number) => Math.round(ms * 10) / 10;
/** A latency percentile for the summary, rounded; 0 when nothing was answered (the summary's numbers stay JSON numbers). */
const latencyOf = (latencies: readonly number[], p: number) => (latencies.length === 0 ? 0 : round(percentile(latencies, p)));

/** The human-readable summary table. */
export function formatSummary(s: Summary): string {
  const hs = s.handshake;
  const rows: [string, string][] = [
    ["handshake", hs.status === "ok" ? `ok (${hs.httpStatus}, code echoed)` : hs.status === "skipped" ? "skipped" : `FAILED: ${hs.detail ?? ""}`],
    ["sent", String(s.sent)],
    ["by status", formatCounts(s.byStatus) || "-"],
    ["accepted", String(s.accepted)],
    ["duplicate", String(s.duplicate)],
    ["rejected", `${s.rejected.expected} expected, ${s.rejected.unexpected} unexpected`],
    ["no response", String(s.errors)],
    ["latency p50 / p99", `${s.latencyMs.p50} ms / ${s.latencyMs.p99} ms (max ${s.latencyMs.max} ms)`],
    ["duration", `${(s.durationMs / 1000).toFixed(1)} s`],
    [
      "result",
      s.ok
        ? "OK: every response was as expected"
        : s.handshake.status === "failed"
          ? "FAILED: the handshake failed, no events sent"
          : `FAILED: ${s.unexpected} unexpected response(s)`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = [`CentrePoint simulator -> ${s.url} (seed ${s.seed})`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
  for (const f of s.failures) lines.push(`  ! ${f.deliveryId}: expected ${f.expected}, got ${f.got}`);
  return lines.join("\n");
}

/** `200:38 401:2`, statuses in ascending order. */
export function formatCounts(counts: Record<string, number>): string {
  return Object.keys(counts)
    .sort()
    .map((k) => `${k}:${counts[k]}`)
    .join(" ");
}

/** One progress line: a bar when `width` > 0, then done/total, counts per status and unexpected. */
export function formatProgress(done: number, total: number, byStatus: Record<string, number>, unexpected: number, width: number): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const bar = width > 0 ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : "";
  return `${bar}${done}/${total}  ${formatCounts(byStatus)}  unexpected:${unexpected}`;
}
