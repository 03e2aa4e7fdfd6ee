import type { Family } from "../../lib/prometheus";
import type { ApiCallCount } from "../../pull/api-calls";
import type { PullSummary } from "./pull";

/** The pull side's metric families (docs/pull.md, README "Metrics"), from stored state only. */
export function pullFamilies(pull: PullSummary, reconcilerCalls: readonly ApiCallCount[]): Family[] {
  const family =
    (type: Family["type"]) =>
    (name: string, help: string): Family => ({ name, help, type, samples: [] });
  const [counter, gauge] = [family("counter"), family("gauge")];

  const api = counter(
    "relay_centrepoint_api_requests_total",
    "Requests the relay made to CentrePoint's V3 API (reconciliation, enrichment, raw-data requests, file links), by method, endpoint (path template) and status (none: no answer).",
  );
  const calls = new Map<string, ApiCallCount>();
  for (const c of [...pull.apiCalls, ...reconcilerCalls]) {
    const key = `${c.method} ${c.endpoint} ${c.status}`;
    calls.set(key, { ...c, count: (calls.get(key)?.count ?? 0) + c.count });
  }
  for (const c of [...calls.values()].sort((a, b) => a.endpoint.localeCompare(b.endpoint) || a.status.localeCompare(b.status)))
    api.samples.push({ labels: { method: c.method, endpoint: c.endpoint, status: c.status }, value: c.count });

  const outcomes = counter("relay_enrichments_total", "Enrichment lookups settled, once per delivery, by source and outcome (complete, partial, failed).");
  const pending = gauge("relay_enrichments_pending", "Deliveries whose enrichment lookup is still being retried, by source.");
  const held = gauge("relay_enrichment_held", "Target hand-offs held until enrichment succeeds or an operator releases them (enrichRequired), by source.");
  const waiting = gauge("relay_enrichment_waiting", "Target hand-offs waiting for enrichment before their deadline, by source.");
  const downloads = counter("relay_file_downloads_total", "Downloads through relay file links (302 to a fresh CentrePoint URL), by source and target.");
  for (const s of pull.sources) {
    if (s.jobs) {
      for (const outcome of ["complete", "partial", "failed"])
        outcomes.samples.push({ labels: { source: s.id, outcome }, value: s.jobs.outcomes[outcome] ?? 0 });
      pending.samples.push({ labels: { source: s.id }, value: s.jobs.pending });
    }
    held.samples.push({ labels: { source: s.id }, value: s.ledger.held });
    waiting.samples.push({ labels: { source: s.id }, value: s.ledger.waiting });
    for (const [target, n] of Object.entries(s.ledger.downloads)) downloads.samples.push({ labels: { source: s.id, target }, value: n });
  }

  const queue = gauge(
    "relay_raw_requests",
    "Automatic raw-data requests now, by API client and state (queued: waiting for one of CentrePoint's 10 slots; active).",
  );
  const ended = counter(
    "relay_raw_requests_total",
    "Automatic raw-data requests that entered a state, by API client and state (queued, completed, error, failed, lost, invalid, overdue).",
  );
  const subjects = counter(
    "relay_subject_lookups_total",
    "Subject lookups of enrichment, by API client and result (hit: from the 24 h cache; lookup: asked CentrePoint; coalesced: shared a lookup in flight).",
  );
  for (const c of pull.clients) {
    const client = c.name;
    queue.samples.push(
      { labels: { client, state: "queued" }, value: c.summary.requests.queued },
      { labels: { client, state: "active" }, value: c.summary.requests.active },
    );
    for (const [state, n] of Object.entries(c.summary.requests.totals)) ended.samples.push({ labels: { client, state }, value: n });
    for (const [result, n] of Object.entries(c.summary.subjects))
      subjects.samples.push({ labels: { client, result: result === "hits" ? "hit" : result === "lookups" ? "lookup" : result }, value: n });
  }
  return [api, outcomes, pending, held, waiting, downloads, queue, ended, subjects];
}
