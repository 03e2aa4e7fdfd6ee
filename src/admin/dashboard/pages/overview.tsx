import type { TrendPoint } from "../../../lib/trends";
import { SourceCharts } from "../charts";
import type { FC } from "hono/jsx";
import { type Tone, Badge, type Issue, Layout, type PageContext, Stat, Time } from "../layout";
import type { ReconcileSummary } from "../../../reconcile/reconciler";
import type { IntegrityStatus } from "../../../ledger/queries";
import type { SourceSummary, TargetSummary } from "../../service/overview";
import type { PullSummary } from "../../service/pull";
import { pullIssues, pullTotals } from "./pull";
import { formatDuration, formatTime, plural, truncate } from "../format";
import { backfilledHref } from "./deliveries";
import { BreakerBadge, TargetStateBadge } from "./parts";
import { type IssueView, objectKey } from "../../../alerts/types";
import { describeObject, issueObjectHref, SEVERITY_TONE } from "./issues";

/** Backlog age past which a target is listed under "Needs attention". */
export const STALE_BACKLOG_MS = 15 * 60_000;

/**
 * An entry of "Needs attention": what the live reads show, `covers` naming the issue condition it is
 * (`<condition>|<object key>`, docs/alerting.md), and the unresolved issue behind it when there is one.
 */
export type AttentionItem = Issue & { covers?: string; issue?: IssueView };

/** The overview's "Needs attention" list from live reads, worst first. Pure. */
export function findIssues(sources: SourceSummary[], targets: TargetSummary[]): AttentionItem[] {
  const issues: AttentionItem[] = [];
  for (const { listed, health } of targets) {
    const href = `/admin/ui/targets/${listed.id}`;
    if (!listed.valid)
      issues.push({
        tone: "bad",
        text: `Target ${listed.id}: its document is invalid (${plural(listed.errors.length, "error")}); it receives nothing until fixed.`,
        href,
      });
    if (!health) {
      issues.push({ tone: "bad", text: `Target ${listed.id}: its outbox could not be read.`, href });
      continue;
    }
    if (health.counts.dead > 0)
      issues.push({
        tone: "bad",
        text: `Target ${listed.id}: ${plural(health.counts.dead, "dead delivery", "dead deliveries")} waiting for replay.`,
        href: `${href}?state=dead`,
        covers: `dead_letters|target:${listed.id}`,
      });
    if (health.heldBy === "gone")
      issues.push({
        tone: "bad",
        text: `Target ${listed.id}: paused after 410 Gone; ${plural(health.counts.held, "delivery", "deliveries")} held until resumed.`,
        href,
        covers: `held|target:${listed.id}`,
      });
    else if (health.heldBy === "config")
      issues.push({
        tone: "warn",
        text: `Target ${listed.id}: holding ${plural(health.counts.held, "delivery", "deliveries")}: ${health.heldReason ?? "configuration problem"}.`,
        href: `${href}?state=held`,
        covers: `held|target:${listed.id}`,
      });
    if (health.breaker.status !== "closed")
      issues.push({
        tone: "warn",
        text: `Target ${listed.id}: circuit breaker ${health.breaker.status.replace("_", "-")} after ${plural(health.breaker.consecutiveFailures, "failure")} in a row.`,
        href,
        covers: `breaker_open|target:${listed.id}`,
      });
    if (health.oldestPendingAgeMs !== null && health.oldestPendingAgeMs > STALE_BACKLOG_MS)
      issues.push({
        tone: "warn",
        text: `Target ${listed.id}: oldest pending delivery has waited ${formatDuration(health.oldestPendingAgeMs)}.`,
        href: `${href}?state=pending`,
        covers: `backlog_age|target:${listed.id}`,
      });
  }
  for (const { listed, stats, lifecycle, reconcile } of sources) {
    const href = `/admin/ui/sources/${listed.id}`;
    if (!listed.valid) issues.push({ tone: "bad", text: `Source ${listed.id}: its document is invalid; CentrePoint gets 503 until fixed.`, href });
    if (lifecycle?.archive.halted)
      issues.push({
        tone: "bad",
        text: `Source ${listed.id}: archiving to R2 is halted: ${lifecycle.archive.halted}`,
        href,
        covers: `archive_halted|source:${listed.id}`,
      });
    if (lifecycle?.retention.error) issues.push({ tone: "bad", text: `Source ${listed.id}: retention stopped: ${lifecycle.retention.error}`, href });
    const report = lifecycle?.integrity.report;
    if (report && !report.ok)
      issues.push({
        tone: "bad",
        text: `Source ${listed.id}: ledger integrity broken at record ${report.firstBroken?.seq ?? "?"} (${report.firstBroken?.reason ?? "unknown"}).`,
        href,
        covers: `integrity_failed|source:${listed.id}`,
      });
    if (!stats || !lifecycle) issues.push({ tone: "bad", text: `Source ${listed.id}: its ledger could not be read.`, href });
    if (stats && stats.attention > 0)
      issues.push({
        tone: "warn",
        text: `Source ${listed.id}: ${plural(stats.attention, "delivery", "deliveries")} flagged for attention.`,
        href: `/admin/ui/deliveries?source=${listed.id}&attention=true`,
      });
    if (reconcile) issues.push(...reconcileIssues(listed.id, reconcile));
  }
  return issues.sort((a, b) => TONE_RANK[a.tone] - TONE_RANK[b.tone]);
}

/**
 * "Needs attention" fed by the unresolved issues: a live entry an issue covers carries that issue
 * (its id, state, who acknowledged it); an issue with no live entry (refusals, a silent source, a
 * failed lookup, or a condition that has just cleared) is listed with its own summary. Worst first. Pure.
 */
export function withIssues(live: AttentionItem[], issues: readonly IssueView[]): AttentionItem[] {
  const unresolved = issues.filter((i) => i.state !== "resolved");
  const byKey = new Map(unresolved.map((i) => [`${i.condition}|${objectKey(i.object)}`, i]));
  const covered = new Set<string>();
  const items = live.map((item) => {
    const issue = item.covers ? byKey.get(item.covers) : undefined;
    if (!issue) return item;
    covered.add(item.covers!);
    return { ...item, issue };
  });
  for (const [key, issue] of byKey) {
    if (covered.has(key)) continue;
    const object = describeObject(issue.object);
    items.push({
      tone: SEVERITY_TONE[issue.severity],
      text: `${object.charAt(0).toUpperCase()}${object.slice(1)}: ${issue.summary}`,
      href: issueObjectHref(issue),
      covers: key,
      issue,
    });
  }
  return items.sort((a, b) => TONE_RANK[a.tone] - TONE_RANK[b.tone]);
}

/** Worst first. */
const TONE_RANK = { bad: 0, warn: 1, info: 2, muted: 3, ok: 4 } as const;

/** What the stored reconciliation state of a source asks for: a failed or erroneous last run, backfills, registration problems. */
export function reconcileIssues(id: string, r: ReconcileSummary): AttentionItem[] {
  const issues: AttentionItem[] = [];
  const href = `/admin/ui/sources/${id}`;
  const last = r.lastFinished;
  if (last?.outcome === "failed")
    issues.push({
      tone: "bad",
      text: `Source ${id}: the last reconciliation with CentrePoint's history failed: ${truncate(last.firstError ?? "no reason recorded", 160)}`,
      href,
      covers: `reconcile_failed|source:${id}`,
    });
  else if (last?.outcome === "errors")
    issues.push({
      tone: "warn",
      text: `Source ${id}: the last reconciliation ended with ${plural(last.errors, "error")}: ${truncate(last.firstError ?? "", 120)}`,
      href,
    });
  if (last && last.backfilled > 0)
    issues.push({
      tone: "warn",
      text: `Source ${id}: the last reconciliation backfilled ${plural(last.backfilled, "delivery", "deliveries")} that never arrived as webhooks; find out why (the registration, the secret, an outage).`,
      href: backfilledHref(id),
      covers: `reconcile_backfilled|source:${id}`,
    });
  const reg = r.registration;
  if (reg?.error)
    issues.push({
      tone: "warn",
      text: `Source ${id}: the webhook registration could not be checked: ${truncate(reg.error, 160)}`,
      href,
      covers: `registration_mismatch|source:${id}`,
    });
  for (const p of reg?.problems ?? [])
    issues.push({ tone: p.code === "missing_event" ? "warn" : "bad", text: `Source ${id}: ${p.message}`, href, covers: `registration_mismatch|source:${id}` });
  return issues;
}

/** Overview: what needs attention, every source with counts and integrity, every target with health. */
export const OverviewPage: FC<{
  page: PageContext;
  sources: SourceSummary[];
  targets: TargetSummary[];
  pull?: PullSummary | null;
  /** The relay's issues (unresolved ones feed "Needs attention"); null when they could not be read. */
  openIssues?: IssueView[] | null;
  /** Every source's deliveries per hour (charts); null when they could not be read. */
  trends?: { day: TrendPoint[]; week: TrendPoint[] } | null;
}> = ({ page, sources, targets, pull = null, openIssues = [], trends = null }) => {
  const unreadable: AttentionItem[] = openIssues === null ? [{ tone: "bad", text: "The relay's issues could not be read.", href: "/admin/ui/issues" }] : [];
  const issues: AttentionItem[] = withIssues([...findIssues(sources, targets), ...pullIssues(pull), ...unreadable], openIssues ?? []);
  const raw = pullTotals(pull);
  const total = (f: (s: SourceSummary) => number | undefined) => sources.reduce((n, s) => n + (f(s) ?? 0), 0);
  const sumHealth = (f: (t: TargetSummary) => number | undefined) => targets.reduce((n, t) => n + (f(t) ?? 0), 0);
  const dead = sumHealth((t) => t.health?.counts.dead);
  const pending = sumHealth((t) => (t.health ? t.health.counts.pending + t.health.counts.delivering : 0));
  const held = sumHealth((t) => t.health?.counts.held);
  return (
    <Layout title="Overview" page={page} nav="overview" signedIn>
      <h1>Overview</h1>
      <p class="sub">What arrived from CentrePoint, what reached each target, and what is stuck.</p>
      <div class="grid">
        <Stat value={total((s) => s.stats?.deliveries)} label="deliveries received" />
        <Stat value={total((s) => s.stats?.duplicates)} label="duplicate copies" />
        <Stat value={total((s) => s.stats?.attention)} label="need attention" tone={total((s) => s.stats?.attention) > 0 ? "warn" : undefined} />
        <Stat value={pending} label="pending to targets" />
        <Stat value={held} label="held" tone={held > 0 ? "warn" : undefined} />
        <Stat value={dead} label="dead letters" tone={dead > 0 ? "bad" : undefined} />
        {pull && pull.clients.length > 0 && (
          <>
            <Stat value={`${raw.active} / ${raw.queued}`} label="raw-data requests active / queued" />
            <Stat value={raw.enrichmentFailures} label="enrichment failures" tone={raw.enrichmentFailures > 0 ? "warn" : undefined} />
          </>
        )}
      </div>

      {trends && trends.day.length > 0 && sources.length > 0 && (
        <section class="card" aria-labelledby="trends-h">
          <h2 id="trends-h">Trends, every source</h2>
          <SourceCharts day={trends.day} week={trends.week} />
        </section>
      )}

      <section class="card" aria-labelledby="issues-h">
        <h2 id="issues-h">Needs attention</h2>
        {issues.length === 0 ? (
          <p class="row" role="status">
            <Badge tone="ok">all clear</Badge> Every target is delivering and every ledger is intact.
          </p>
        ) : (
          <ul class="issues">
            {issues.map((i) => (
              <li>
                <Badge tone={i.tone}>{i.tone === "bad" ? "action" : "check"}</Badge>
                <a href={i.href}>{i.text}</a>
                {i.issue && (
                  <a class="small muted" href={`/admin/ui/issues#${i.issue.issueId}`}>
                    {i.issue.issueId} ·{" "}
                    {i.issue.state === "acknowledged"
                      ? `acknowledged by ${i.issue.acknowledgedBy ?? "?"}`
                      : `open since ${formatTime(Date.parse(i.issue.firstSeenAt))}`}
                  </a>
                )}
              </li>
            ))}
          </ul>
        )}
      </section>

      <section class="card flush" aria-labelledby="targets-h">
        <div class="head">
          <h2 id="targets-h">Targets</h2>
          <span class="muted small">{plural(targets.length, "target")}</span>
        </div>
        {targets.length === 0 ? (
          <p class="empty">
            No targets configured. Add one with <code>PUT /admin/targets/&lt;id&gt;</code>.
          </p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Target</th>
                  <th scope="col">State</th>
                  <th scope="col" class="num">
                    Pending
                  </th>
                  <th scope="col">Oldest pending</th>
                  <th scope="col" class="num">
                    Delivered
                  </th>
                  <th scope="col" class="num">
                    Dead
                  </th>
                  <th scope="col" class="num">
                    Held
                  </th>
                  <th scope="col">Breaker</th>
                  <th scope="col">Last error</th>
                  <th scope="col">Last success</th>
                </tr>
              </thead>
              <tbody>
                {targets.map(({ listed, health }) => (
                  <tr>
                    <th scope="row">
                      <a href={`/admin/ui/targets/${listed.id}`}>{listed.id}</a>
                      {listed.valid && <div class="muted small mono">{hostOf(listed.config.url)}</div>}
                    </th>
                    <td>
                      <TargetStateBadge listed={listed} health={health} />
                    </td>
                    <td class="num">{health ? health.counts.pending + health.counts.delivering : "—"}</td>
                    <td>{health?.oldestPendingAgeMs != null ? formatDuration(health.oldestPendingAgeMs) : <span class="muted">—</span>}</td>
                    <td class="num">{health?.counts.delivered ?? "—"}</td>
                    <td class="num">
                      {health && health.counts.dead > 0 ? (
                        <a href={`/admin/ui/targets/${listed.id}?state=dead`}>{health.counts.dead}</a>
                      ) : (
                        (health?.counts.dead ?? "—")
                      )}
                    </td>
                    <td class="num">{health?.counts.held ?? "—"}</td>
                    <td>{health ? <BreakerBadge status={health.breaker.status} /> : "—"}</td>
                    <td>
                      {health?.lastError ? (
                        <>
                          <span title={health.lastError.message}>{truncate(health.lastError.message, 60)}</span>
                          <div class="muted small">
                            <Time ms={health.lastError.at} now={page.now} />
                          </div>
                        </>
                      ) : (
                        <span class="muted">none</span>
                      )}
                    </td>
                    <td>
                      <Time ms={health?.lastSuccessAt} now={page.now} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section class="card flush" aria-labelledby="sources-h">
        <div class="head">
          <h2 id="sources-h">Sources</h2>
          <span class="muted small">{plural(sources.length, "source")}</span>
        </div>
        {sources.length === 0 ? (
          <p class="empty">
            No sources configured. Add one with <code>PUT /admin/sources/&lt;id&gt;</code>.
          </p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Source</th>
                  <th scope="col">State</th>
                  <th scope="col" class="num">
                    Deliveries
                  </th>
                  <th scope="col" class="num">
                    Duplicates
                  </th>
                  <th scope="col" class="num">
                    Attention
                  </th>
                  <th scope="col" class="num">
                    Pending hand-offs
                  </th>
                  <th scope="col">Last received</th>
                  <th scope="col">Integrity</th>
                </tr>
              </thead>
              <tbody>
                {sources.map(({ listed, stats, lifecycle }) => (
                  <tr>
                    <th scope="row">
                      <a href={`/admin/ui/sources/${listed.id}`}>{listed.id}</a>
                      {listed.valid && <div class="muted small">{listed.config.auth.type} auth</div>}
                    </th>
                    <td>
                      {!listed.valid ? (
                        <Badge tone="bad">invalid document</Badge>
                      ) : listed.config.enabled ? (
                        <Badge tone="ok">enabled</Badge>
                      ) : (
                        <Badge tone="muted">disabled</Badge>
                      )}
                    </td>
                    <td class="num">{stats ? <a href={`/admin/ui/deliveries?source=${listed.id}`}>{stats.deliveries}</a> : "—"}</td>
                    <td class="num">{stats?.duplicates ?? "—"}</td>
                    <td class="num">
                      {stats && stats.attention > 0 ? (
                        <a href={`/admin/ui/deliveries?source=${listed.id}&attention=true`}>{stats.attention}</a>
                      ) : (
                        (stats?.attention ?? "—")
                      )}
                    </td>
                    <td class="num">{stats?.pendingHandoffs ?? "—"}</td>
                    <td>
                      <Time ms={stats?.lastReceivedAt} now={page.now} />
                    </td>
                    <td>
                      <IntegrityBadge integrity={lifecycle?.integrity ?? null} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </Layout>
  );
};

/** The stored report (the overview never runs a check): intact through a record, broken at one, or not checked yet; and a run under way. */
const IntegrityBadge: FC<{ integrity: IntegrityStatus | null }> = ({ integrity }) => {
  if (!integrity) return <Badge tone="bad">unreadable</Badge>;
  const { report, running, head, verifiedThrough } = integrity;
  const underWay = running && (
    <span class="muted small">
      {" "}
      {running.mode} check at #{running.through} of {running.upTo}
    </span>
  );
  if (!report)
    return (
      <span>
        <Badge tone="muted">not checked yet</Badge>
        {underWay}
      </span>
    );
  if (!report.ok) return <Badge tone="bad">broken at #{report.firstBroken?.seq ?? "?"}</Badge>;
  const newer = head - verifiedThrough;
  return (
    <span title={`head ${report.headHash}, checked ${new Date(report.checkedAt).toISOString()}`}>
      <Badge tone="ok">intact</Badge> <span class="muted small">through #{verifiedThrough}</span>
      {newer > 0 && !running && <span class="muted small"> ({plural(newer, "newer record")} not yet checked)</span>}
      {underWay}
    </span>
  );
};

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
