import type { LedgerLifecycle } from "../../ledger/queries";
import type { Family } from "../../lib/prometheus";
import type { OutboxHealth } from "../../outbox/views";

/**
 * The lifecycle part of `/admin/metrics`: archive lag and progress, what retention pruned, and
 * integrity state, from each ledger's stored progress and each outbox's counters (no scans).
 */
export function lifecycleFamilies(
  ledgers: readonly { id: string; lifecycle: LedgerLifecycle }[],
  outboxes: readonly { id: string; health: OutboxHealth }[],
): Family[] {
  const family = (name: string, help: string, type: Family["type"]): Family => ({ name, help, type, samples: [] });
  const lag = family("relay_archive_lag_records", "Records of a source's ledger not archived to R2 yet (the open segment, and closed ones waiting).", "gauge");
  const segments = family("relay_archive_segments_total", "Segments a source's ledger archived to R2.", "counter");
  const bytes = family("relay_archive_bytes_total", "Bytes of segment files a source's ledger archived to R2.", "counter");
  const lastArchived = family("relay_archive_last_success_timestamp_seconds", "When a source's ledger last archived a segment (0: never).", "gauge");
  const halted = family("relay_archive_halted", "1 when a source's archiving is halted and waits for an operator (see the source page and the logs).", "gauge");
  const pruned = family(
    "relay_ledger_pruned_total",
    "What retention removed from a source's ledger: bodies (digests kept) and whole records (archived).",
    "counter",
  );
  const outboxPruned = family("relay_outbox_pruned_total", "Delivered dispatches and their attempts retention removed from a target's outbox.", "counter");
  const intact = family(
    "relay_integrity_ok",
    "1 when a source's latest integrity run found the chain intact, 0 when broken (no sample before a first run).",
    "gauge",
  );
  const verified = family("relay_integrity_verified_through", "The seq through which a source's hash chain has been verified.", "gauge");
  const unverified = family("relay_integrity_unverified_records", "Records of a source newer than its integrity checkpoint.", "gauge");
  const checked = family("relay_integrity_last_check_timestamp_seconds", "When a source's latest integrity run finished (0: never).", "gauge");
  for (const { id, lifecycle: l } of ledgers) {
    const source = { source: id };
    lag.samples.push({ labels: source, value: l.archive.lagRecords });
    segments.samples.push({ labels: source, value: l.archive.segments });
    bytes.samples.push({ labels: source, value: l.archive.bytes });
    lastArchived.samples.push({ labels: source, value: (l.archive.lastArchivedAt ?? 0) / 1000 });
    halted.samples.push({ labels: source, value: l.archive.halted === null ? 0 : 1 });
    pruned.samples.push(
      { labels: { ...source, what: "body" }, value: l.retention.prunedBodies },
      { labels: { ...source, what: "record" }, value: l.retention.prunedRecords },
    );
    const report = l.integrity.report;
    if (report) intact.samples.push({ labels: source, value: report.ok ? 1 : 0 });
    verified.samples.push({ labels: source, value: l.integrity.verifiedThrough });
    unverified.samples.push({ labels: source, value: l.integrity.head - l.integrity.verifiedThrough });
    checked.samples.push({ labels: source, value: (report?.checkedAt ?? 0) / 1000 });
  }
  for (const { id, health } of outboxes) {
    outboxPruned.samples.push(
      { labels: { target: id, what: "dispatch" }, value: health.retention.prunedDispatches },
      { labels: { target: id, what: "attempt" }, value: health.retention.prunedAttempts },
    );
  }
  return [lag, segments, bytes, lastArchived, halted, pruned, outboxPruned, intact, verified, unverified, checked];
}
