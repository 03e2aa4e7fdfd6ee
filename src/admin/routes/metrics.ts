import { Hono } from "hono";
import { listConfigs } from "../../config/store";
import type { AppEnv } from "../../env";
import { type Family, histogramSamples, PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "../../lib/prometheus";
import { LATENCY_BUCKETS_S } from "../../outbox/views";
import { describeAdmin } from "../openapi";
import { lifecycleFamilies } from "./lifecycle-metrics";
import { ledgerOf, outboxOf } from "../service/stubs";

/** `GET /admin/metrics`: Prometheus text, read from every source's ledger and every target's outbox. */
export const metricsRoutes = new Hono<AppEnv>();

metricsRoutes.get(
  "/metrics",
  describeAdmin({ tag: "operations", summary: "Prometheus metrics (text exposition format 0.0.4)", responses: { 200: { description: "metrics text" } } }),
  async (c) => {
    const [sources, targets] = await Promise.all([listConfigs(c.env.CONFIG, "source"), listConfigs(c.env.CONFIG, "target")]);
    const ledgerIds = sources.map((s) => s.id);
    const [ledgers, outboxes] = await Promise.all([
      Promise.all(ledgerIds.map(async (id) => ({ id, m: await ledgerOf(c.env, id).metrics() }))),
      Promise.all(
        targets.map(async (t) => {
          const stub = outboxOf(c.env, t.id);
          const [health, m] = await Promise.all([stub.health(), stub.metrics()]);
          return { id: t.id, health, m };
        }),
      ),
    ]);

    const received: Family = {
      name: "relay_deliveries_received_total",
      help: "Deliveries received, by source, kind and outcome (accepted or duplicate).",
      type: "counter",
      samples: [],
    };
    const rejected: Family = {
      name: "relay_deliveries_rejected_total",
      help: "Requests from an allowed address refused before recording (credentials, size, media type, handshake code), by source and reason. Unknown sources and refused addresses are only logged.",
      type: "counter",
      samples: [],
    };
    for (const { id, m } of ledgers) {
      for (const k of m.kinds) {
        received.samples.push(
          { labels: { source: id, kind: k.kind, outcome: "accepted" }, value: k.accepted },
          { labels: { source: id, kind: k.kind, outcome: "duplicate" }, value: k.duplicates },
        );
      }
      for (const [reason, n] of Object.entries(m.rejected)) rejected.samples.push({ labels: { source: id, reason }, value: n });
    }

    const attempts: Family = { name: "relay_attempts_total", help: "Delivery attempts, by target, outcome and error class.", type: "counter", samples: [] };
    const gauge = (name: string, help: string): Family => ({ name, help, type: "gauge", samples: [] });
    const pending = gauge("relay_outbox_pending", "Deliveries waiting to be sent (pending or in flight), by target.");
    const oldest = gauge("relay_outbox_oldest_pending_age_seconds", "Age of the oldest pending delivery since it was planned, by target (0 when none).");
    const dead = gauge("relay_outbox_dead", "Deliveries whose attempts are exhausted, waiting for replay, by target.");
    const held = gauge("relay_outbox_held", "Deliveries held because the target is disabled, gone (410) or misconfigured, by target.");
    const breakerOpen = gauge("relay_outbox_breaker_open", "1 when the target's circuit breaker is open or probing.");
    const latency: Family = {
      name: "relay_delivery_latency_seconds",
      help: "Accept-to-delivered latency of delivered events, by target.",
      type: "histogram",
      samples: [],
    };
    for (const { id, health, m } of outboxes) {
      for (const a of m.attempts) attempts.samples.push({ labels: { target: id, outcome: a.outcome, error_class: a.errorClass ?? "" }, value: a.count });
      pending.samples.push({ labels: { target: id }, value: health.counts.pending + health.counts.delivering });
      oldest.samples.push({ labels: { target: id }, value: (health.oldestPendingAgeMs ?? 0) / 1000 });
      dead.samples.push({ labels: { target: id }, value: health.counts.dead });
      held.samples.push({ labels: { target: id }, value: health.counts.held });
      breakerOpen.samples.push({ labels: { target: id }, value: health.breaker.status === "closed" ? 0 : 1 });
      latency.samples.push(...histogramSamples({ target: id }, LATENCY_BUCKETS_S, m.latency.counts, m.latency.sumSeconds));
    }
    const usage = (name: string, help: string): Family => ({ name, help, type: "counter", samples: [] });
    const doRequests = usage(
      "relay_object_requests_total",
      "Durable Object requests on the hot path (record, hand-off, enqueue, alarm runs) since the object's instance started, by object.",
    );
    const rowsRead = usage("relay_object_rows_read_total", "SQLite rows read (billing units) since the object's instance started, by object.");
    const rowsWritten = usage("relay_object_rows_written_total", "SQLite rows written (billing units) since the object's instance started, by object.");
    for (const [object, u] of [
      ...ledgers.map(({ id, m }) => [`ledger:${id}`, m.usage] as const),
      ...outboxes.map(({ id, m }) => [`outbox:${id}`, m.usage] as const),
    ]) {
      doRequests.samples.push({ labels: { object }, value: u.requests });
      rowsRead.samples.push({ labels: { object }, value: u.rowsRead });
      rowsWritten.samples.push({ labels: { object }, value: u.rowsWritten });
    }
    const invalid = gauge("relay_config_invalid_documents", "KV documents that fail validation, by kind.");
    invalid.samples.push(
      { labels: { kind: "source" }, value: sources.filter((s) => !s.valid).length },
      { labels: { kind: "target" }, value: targets.filter((t) => !t.valid).length },
    );

    // Archive, retention and integrity (lifecycle-metrics.ts).
    const lifecycle = lifecycleFamilies(
      ledgers.map(({ id, m }) => ({ id, lifecycle: m.lifecycle })),
      outboxes,
    );

    return c.body(
      renderPrometheus([
        received,
        rejected,
        attempts,
        pending,
        oldest,
        dead,
        held,
        breakerOpen,
        latency,
        doRequests,
        rowsRead,
        rowsWritten,
        invalid,
        ...lifecycle,
      ]),
      200,
      {
        "content-type": PROMETHEUS_CONTENT_TYPE,
      },
    );
  },
);
