import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyResponse, formatCounts, formatProgress, formatSummary, type ResponseRecord, summarize } from "../harness/simulator/summary.ts";
import { formatLatency, percentile, summarizeLatency } from "../harness/stats.ts";

test("classifyResponse: the relay's answers against each expectation", () => {
  assert.deepEqual(classifyResponse("accepted", 200, '{"status":"accepted"}'), { outcome: "accepted", ok: true });
  assert.deepEqual(classifyResponse("accepted", 204, ""), { outcome: "accepted", ok: true });
  assert.deepEqual(classifyResponse("accepted", 200, '{"status":"duplicate"}'), { outcome: "duplicate", ok: false });
  assert.deepEqual(classifyResponse("duplicate", 200, '{"status":"duplicate"}'), { outcome: "duplicate", ok: true });
  assert.deepEqual(classifyResponse("duplicate", 200, '{"status":"accepted"}'), { outcome: "accepted", ok: false });
  assert.deepEqual(classifyResponse("rejected", 401, '{"error":"unauthorized"}'), { outcome: "rejected", ok: true });
  assert.deepEqual(classifyResponse("rejected", 403, ""), { outcome: "rejected", ok: false });
  assert.deepEqual(classifyResponse("rejected", 200, "{}"), { outcome: "accepted", ok: false });
  assert.deepEqual(classifyResponse("accepted", 500, "oops"), { outcome: "rejected", ok: false });
  assert.deepEqual(classifyResponse("accepted", null, ""), { outcome: "error", ok: false });
});

test("percentile is nearest-rank over unsorted values", () => {
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.equal(percentile([3, 1, 2], 0), 1);
  assert.equal(percentile([3, 1, 2], 100), 3);
  assert.equal(percentile([5], 99), 5);
  assert.equal(percentile([4, 1, 3, 2], 50), 2);
  assert.equal(
    percentile(
      Array.from({ length: 100 }, (_, i) => 100 - i),
      99,
    ),
    99,
  );
  assert.equal(percentile([1, 2, 3, 1000], 99), 1000);
});

test("summarizeLatency and formatLatency: nearest-rank p50/p99, max and count, rounded to 0.1", () => {
  assert.deepEqual(summarizeLatency([12.34, 1, 50.06, 3]), { n: 4, p50: 3, p99: 50.1, max: 50.1 });
  assert.equal(formatLatency([12.34, 1, 50.06, 3]), "p50 3 ms, p99 50.1 ms, max 50.1 ms (n=4)");
});

const rec = (
  deliveryId: string,
  expected: ResponseRecord["expected"],
  status: number | null,
  outcome: ResponseRecord["outcome"],
  ok: boolean,
  latencyMs = 10,
): ResponseRecord => ({ deliveryId, expected, status, outcome, ok, latencyMs, detail: ok ? undefined : `${status}` });

test("summarize counts outcomes, statuses, latencies and the accepted ids", () => {
  const records = [
    rec("a", "accepted", 200, "accepted", true, 10),
    rec("b", "accepted", 200, "accepted", true, 30),
    rec("a", "duplicate", 200, "duplicate", true, 20),
    rec("c", "rejected", 401, "rejected", true, 5),
    rec("d", "accepted", 403, "rejected", false, 6),
    rec("e", "accepted", null, "error", false, 0),
  ];
  const s = summarize(records, { url: "http://x/webhooks/s", seed: 3, handshake: { status: "ok", httpStatus: 200 }, durationMs: 1234.4 });
  assert.equal(s.ok, false);
  assert.equal(s.sent, 6);
  assert.deepEqual(s.byStatus, { "200": 3, "401": 1, "403": 1, error: 1 });
  assert.equal(s.accepted, 2);
  assert.equal(s.duplicate, 1);
  assert.deepEqual(s.rejected, { expected: 1, unexpected: 1 });
  assert.equal(s.errors, 1);
  assert.equal(s.unexpected, 2);
  assert.deepEqual(s.latencyMs, { p50: 10, p99: 30, max: 30 });
  assert.equal(s.durationMs, 1234);
  assert.deepEqual(s.acceptedIds, ["a", "b"]);
  assert.deepEqual(
    s.failures.map((f) => f.deliveryId),
    ["d", "e"],
  );
});

test("a failed handshake fails the run even without unexpected responses", () => {
  const s = summarize([], { url: "u", seed: 1, handshake: { status: "failed", detail: "HTTP 404" }, durationMs: 1 });
  assert.equal(s.ok, false);
  assert.deepEqual(s.latencyMs, { p50: 0, p99: 0, max: 0 }, "no responses: latencies are 0, not NaN");
  assert.match(formatSummary(s), /handshake +FAILED: HTTP 404/);
  assert.match(formatSummary(s), /result +FAILED: the handshake failed/);
});

test("formatSummary shows every row", () => {
  const s = summarize([rec("a", "accepted", 200, "accepted", true), rec("b", "rejected", 401, "rejected", true)], {
    url: "http://x",
    seed: 9,
    handshake: { status: "skipped" },
    durationMs: 2500,
  });
  const text = formatSummary(s);
  for (const row of [
    /seed 9/,
    /handshake +skipped/,
    /sent +2/,
    /by status +200:1 401:1/,
    /accepted +1/,
    /duplicate +0/,
    /rejected +1 expected, 0 unexpected/,
    /latency p50 \/ p99 +10 ms \/ 10 ms/,
    /duration +2\.5 s/,
    /result +OK/,
  ])
    assert.match(text, row);
});

test("formatProgress: a bar, or a plain line", () => {
  assert.equal(formatProgress(5, 10, { "200": 4, "401": 1 }, 0, 10), "[#####-----] 5/10  200:4 401:1  unexpected:0");
  assert.equal(formatProgress(5, 10, { "200": 5 }, 1, 0), "5/10  200:5  unexpected:1");
  assert.equal(formatCounts({ "401": 1, "200": 2 }), "200:2 401:1");
});
