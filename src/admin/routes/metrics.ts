import { Hono } from "hono";
import { alertsOf } from "../../alerts/report";
import { isValidId } from "../../config/schemas";
import { listConfigs } from "../../config/store";
import type { AppEnv } from "../../env";
import { type Family, histogramSamples, PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "../../lib/prometheus";
import { LATENCY_BUCKETS_S } from "../../outbox/views";
import { problemCount } from "../../reconcile/registration";
import { requireRole } from "../authz";
import { trailOf } from "../../audit/audit";
import { describeAdmin } from "../openapi";
import { auditFamilies } from "./audit";
import { summarizePull } from "../service/pull";
import { pullFamilies } from "../service/pull-metrics";
import { reconcileSummary } from "../service/reconcile";
import { alertFamilies } from "./alert-metrics";
import { lifecycleFamilies } from "./lifecycle-metrics";
import { ledgerOf, outboxOf } from "../service/stubs";
import { signInGuard } from "../sign-in-guard";

/** `GET /admin/metrics`: Prometheus text, read from every source's ledger and every target's outbox. */
export const metrics = new Hono<AppEnv>();

metrics.get(
  "/",
  requireRole("viewer"),
  describeAdmin({ tag: "operations", summary: "Prometheus metrics (text exposition format 0.0.4)", responses: { 200: { description: "metrics text" } } }),
  async (c) => {
    // Only documents under ids the API could have written have Durable Objects; opening one for any other would create it.
    const [allSources, allTargets] = await Promise.all([listConfigs(c.env.CONFIG, "source"), listConfigs(c.env.CONFIG, "target")]);
    const [sources, targets] = [allSources.filter((s) => isValidId(s.id)), allTargets.filter((t) => isValidId(t.id))];
    const ledgerIds = sources.map((s) => s.id);
    const [ledgers, outboxes, reconcilers, pull, identity, issueCounts] = await Promise.all([
      Promise.all(ledgerIds.map(async (id) => ({ id, m: await ledgerOf(c.env, id).metrics() }))),
      Promise.all(
        targets.map(async (t) => {
          const stub = outboxOf(c.env, t.id);
          const [health, m] = await Promise.all([stub.health(), stub.metrics()]);
          return { id: t.id, health, m };
        }),
      ),
      // Only sources with a centrepoint block have a Reconciler; its stored state, never a call to CentrePoint.
      Promise.all(sources.map(async (s) => ({ id: s.id, r: await reconcileSummary(c.env, s) }))),
      summarizePull(c.env, sources, targets),
      signInGuard(c.env).metrics(),
      alertsOf(c.env).openCounts(),
    ]);

    const family =
      (type: Family["type"]) =>
      (name: string, help: string): Family => ({ name, help, type, samples: [] });
    const [counter, gauge] = [family("counter"), family("gauge")];
    const received = counter("relay_deliveries_received_total", "Deliveries received, by source, kind and outcome (accepted or duplicate).");
    const rejected = counter(
      "relay_deliveries_rejected_total",
      "Requests from an allowed address refused before recording (credentials, size, media type, handshake code), by source and reason. Unknown sources and refused addresses are only logged.",
    );
    for (const { id, m } of ledgers) {
      for (const k of m.kinds) {
        received.samples.push(
          { labels: { source: id, kind: k.kind, outcome: "accepted" }, value: k.accepted },
          { labels: { source: id, kind: k.kind, outcome: "duplicate" }, value: k.duplicates },
        );
      }
      for (const [reason, n] of Object.entries(m.rejected)) rejected.samples.push({ labels: { source: id, reason }, value: n });
    }

    const attempts = counter("relay_attempts_total", "Dispatch attempts, by target, outcome and error class.");
    const pending = gauge("relay_outbox_pending", "Dispatches waiting to be sent (pending or in flight), by target.");
    const oldest = gauge("relay_outbox_oldest_pending_age_seconds", "Age of the oldest pending dispatch since it was planned, by target (0 when none).");
    const dead = gauge("relay_outbox_dead", "Dispatches whose attempts are exhausted, waiting for replay, by target.");
    const held = gauge("relay_outbox_held", "Dispatches held because the target is disabled, gone (410) or misconfigured, by target.");
    const breakerOpen = gauge("relay_outbox_breaker_open", "1 when the target's circuit breaker is open or probing.");
    const latency = family("histogram")("relay_dispatch_latency_seconds", "Accept-to-delivered latency of delivered dispatches, by target.");
    // The same samples under the name before the README glossary, for one release (README "Metrics").
    const latencyAlias: Family = {
      ...latency,
      name: "relay_delivery_latency_seconds",
      help: "Accept-to-delivered latency of delivered dispatches, by target: a deprecated alias of relay_dispatch_latency_seconds, emitted until the next release.",
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
    const doRequests = counter(
      "relay_object_requests_total",
      "Durable Object requests on the hot path (record, hand-off, accepted hand-off, alarm runs) since the object's instance started, by object.",
    );
    const rowsRead = counter("relay_object_rows_read_total", "SQLite rows read (billing units) since the object's instance started, by object.");
    const rowsWritten = counter("relay_object_rows_written_total", "SQLite rows written (billing units) since the object's instance started, by object.");
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

    const runs = counter(
      "relay_reconcile_runs_total",
      "Finished reconciliations against CentrePoint's delivery history, by source and outcome (ok, errors, failed).",
    );
    const backfilled = counter(
      "relay_reconcile_backfilled_total",
      "Deliveries backfilled from CentrePoint's delivery history (they never arrived as webhooks), by source.",
    );
    const lastSuccess = gauge(
      "relay_reconcile_last_success_timestamp_seconds",
      "When the source's last reconciliation that did not fail finished, Unix seconds.",
    );
    const running = gauge("relay_reconcile_running", "1 while a reconciliation of the source is in progress.");
    const registration = gauge(
      "relay_registration_problems",
      "Problems found by the source's last webhook registration check (1 when it could not be read), by source.",
    );
    for (const { id, r } of reconcilers) {
      if (!r) continue;
      for (const [outcome, n] of Object.entries(r.totals.runs)) runs.samples.push({ labels: { source: id, outcome }, value: n });
      backfilled.samples.push({ labels: { source: id }, value: r.totals.backfilled });
      if (r.lastSuccessAt !== null) lastSuccess.samples.push({ labels: { source: id }, value: Math.floor(r.lastSuccessAt / 1000) });
      running.samples.push({ labels: { source: id }, value: r.latest && !r.latest.complete ? 1 : 0 });
      if (r.registration) registration.samples.push({ labels: { source: id }, value: problemCount(r.registration) });
    }

    const issuesOpen = gauge("relay_issues_open", "Unresolved issues (open or acknowledged), by condition and severity (docs/alerting.md).");
    for (const i of issueCounts) issuesOpen.samples.push({ labels: { condition: i.condition, severity: i.severity }, value: i.count });

    const families = [
      received,
      rejected,
      attempts,
      pending,
      oldest,
      dead,
      held,
      breakerOpen,
      latency,
      latencyAlias,
      doRequests,
      rowsRead,
      rowsWritten,
      invalid,
      runs,
      backfilled,
      lastSuccess,
      running,
      registration,
      issuesOpen,
      ...pullFamilies(
        pull,
        reconcilers.flatMap(({ r }) => r?.apiCalls ?? []),
      ),
      // Archive, retention and integrity (lifecycle-metrics.ts).
      ...lifecycleFamilies(
        ledgers.map(({ id, m }) => ({ id, lifecycle: m.lifecycle })),
        outboxes,
      ),
      ...auditFamilies(await trailOf(c.env).status()),
      // Identity (docs/identity.md): refused sign-ins, named API tokens by state.
      {
        name: "relay_admin_signin_refusals_total",
        help: "Refused admin sign-ins and bearer requests, by reason (wrong_token, expired_token, no_role, access_<failed check>).",
        type: "counter" as const,
        samples: Object.entries(identity.refusals).map(([reason, value]) => ({ labels: { reason }, value })),
      },
      {
        name: "relay_api_tokens",
        help: "Named API tokens not revoked, by state: active (not expired), expiring_14d (active, expiring within 14 days), expired.",
        type: "gauge" as const,
        samples: Object.entries(identity.tokens).map(([state, value]) => ({ labels: { state }, value })),
      },
      // Alert channels' outboxes (alert-metrics.ts).
      ...(await alertFamilies(c.env)),
    ];
    return c.body(renderPrometheus(families), 200, {
      "content-type": PROMETHEUS_CONTENT_TYPE,
    });
  },
);
