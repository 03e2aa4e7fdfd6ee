import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { outboxOf } from "./support/outbox";
import { admin, freshId, ledgerOf, postWebhook, putSource, putTarget } from "./support/helpers";

afterEach(() => vi.restoreAllMocks());

describe("ingress to targets, with real alarms", () => {
  it("delivers every event to a healthy target while another target's request is still unanswered", async () => {
    const source = freshId();
    const healthy = freshId("t");
    const hanging = freshId("t");
    await putSource(source);
    await putTarget(healthy, { sources: [source], url: "https://healthy.example/hook" });
    // The longest timeout there is: the hanging request ends only when the test lets it go.
    await putTarget(hanging, { sources: [source], url: "https://hanging.example/hook", timeoutMs: 120_000 });
    const delivered: string[] = [];
    let hangingRequests = 0;
    let letGo = false;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      if (String(input).startsWith("https://hanging.example")) {
        hangingRequests++;
        // Settled from the outbox's own context (a promise made there cannot be settled from the
        // test's): it polls `letGo`, and ends at the latest when the outbox's timeout aborts it.
        return new Promise<Response>((_, reject) => {
          const poll = setInterval(() => {
            if (!letGo && !init?.signal?.aborted) return;
            clearInterval(poll);
            reject(init?.signal?.aborted ? init.signal.reason : new TypeError("connection reset (let go by the test)"));
          }, 20);
        });
      }
      delivered.push((init?.headers as Record<string, string>)["webhook-id"]!);
      return new Response("ok");
    });

    const ids = Array.from({ length: 5 }, (_, i) => `iso-${i}`);
    for (const [i, id] of ids.entries()) {
      const res = await postWebhook(source, { deliveryId: id, body: JSON.stringify({ status: "started", uploadId: String(i), subjectId: "1", studyId: "2" }) });
      expect(res.status).toBe(200);
    }
    await vi.waitFor(() => expect(hangingRequests).toBeGreaterThan(0), { timeout: 10_000, interval: 20 });
    await vi.waitFor(() => expect([...delivered].sort()).toEqual(ids), { timeout: 10_000, interval: 20 });
    // Every event reached the healthy target while the hanging target's first request was unanswered.
    expect((await outboxOf(hanging).health()).counts.delivered).toBe(0);
    expect((await outboxOf(hanging).health()).lastError).toBeNull();

    letGo = true;
    await vi.waitFor(async () => expect((await outboxOf(hanging).health()).lastError).not.toBeNull(), { timeout: 10_000, interval: 20 });
  }, 30_000);
});

describe("metrics", () => {
  it("reports received, rejected, attempts, backlog and latency in Prometheus text", async () => {
    const source = freshId();
    const target = freshId("t");
    await putSource(source);
    await putTarget(target, { sources: [source], url: "https://edc.example/hook" });
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
    await postWebhook(source, { deliveryId: "m-1" });
    await postWebhook(source, { deliveryId: "m-1" });
    await postWebhook(source, { sign: false });
    await postWebhook(source, { ip: "203.0.113.1" }); // refused address: logged only, never a durable write
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(target));
    await vi.waitFor(async () => expect((await outboxOf(target).health()).counts.delivered).toBe(1), { timeout: 5_000, interval: 20 });

    const res = await admin("/metrics");
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await res.text();
    expect(text).toContain(`relay_deliveries_received_total{source="${source}",kind="upload.completed",outcome="accepted"} 1`);
    expect(text).toContain(`relay_deliveries_received_total{source="${source}",kind="upload.completed",outcome="duplicate"} 1`);
    expect(text).toContain(`relay_deliveries_rejected_total{source="${source}",reason="auth_missing"} 1`);
    expect(text).not.toContain("ip_not_allowed");
    expect(text).toContain(`relay_attempts_total{target="${target}",outcome="success",error_class=""} 1`);
    expect(text).toContain(`relay_outbox_pending{target="${target}"} 0`);
    expect(text).toContain(`relay_dispatch_latency_seconds_count{target="${target}"} 1`);
    expect(text).toMatch(new RegExp(`relay_dispatch_latency_seconds_bucket\\{target="${target}",le="\\+Inf"\\} 1`));
    // The name before the glossary, kept as a documented alias for one release: the same samples under the old name.
    expect(text).toMatch(/# HELP relay_delivery_latency_seconds .*deprecated alias of relay_dispatch_latency_seconds/);
    expect(text).toContain(`relay_delivery_latency_seconds_count{target="${target}"} 1`);
    expect(text).toMatch(new RegExp(`relay_delivery_latency_seconds_bucket\\{target="${target}",le="\\+Inf"\\} 1`));
  });
});

describe("structured logs", () => {
  it("writes one JSON line per request and per run's deliveries, with ids and outcome, never a secret or body", async () => {
    const source = freshId();
    const target = freshId("t");
    await putSource(source, { auth: { type: "bearer", tokenEnv: "TEST_BEARER_TOKEN" } });
    await putTarget(target, { sources: [source], url: "https://edc.example/hook", auth: { type: "bearer", tokenEnv: "TEST_TARGET_TOKEN" } });
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
    const lines: string[] = [];
    for (const method of ["log", "warn", "error"] as const) vi.spyOn(console, method).mockImplementation((line: unknown) => void lines.push(String(line)));
    const body = JSON.stringify({ status: "started", uploadId: "secret-looking-body-value", subjectId: "1", studyId: "2" });
    await postWebhook(source, { deliveryId: "log-1", body, sign: false, headers: { authorization: "Bearer test-bearer-token" } });
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(target));
    await vi.waitFor(() => expect(lines.some((l) => l.includes('"dispatches delivered"') && l.includes("log-1"))).toBe(true), { timeout: 5_000, interval: 20 });

    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.find((r) => r.msg === "webhook accepted" && r.deliveryId === "log-1")).toMatchObject({
      source,
      deliveryId: "log-1",
      outcome: "accepted",
      ms: expect.any(Number),
    });
    expect(records.find((r) => r.msg === "dispatches delivered" && (r.deliveryIds as string[]).includes("log-1"))).toMatchObject({
      level: "info",
      target,
      count: 1,
      deliveryIds: ["log-1"],
      sources: [source],
      statuses: { "200": 1 },
      msP50: expect.any(Number),
      msMax: expect.any(Number),
    });
    const all = lines.join("\n");
    for (const secret of ["test-bearer-token", "test-target-token", "secret-looking-body-value"]) expect(all).not.toContain(secret);
  });
});
