import type { TrendPoint } from "../../../lib/trends";
import { TargetCharts } from "../charts";
import { AuditCard } from "./audit";
import type { AuditLine } from "../../../audit/format";
import type { FC } from "hono/jsx";
import type { TargetConfig } from "../../../config/schemas";
import type { Listed } from "../../../config/store";
import type { DispatchState, DispatchView, OutboxHealth } from "../../../outbox/views";
import { formatDuration, formatTime, plural, truncate } from "../format";
import { Badge, can, type Flash, Layout, Notice, type PageContext, PostForm, Stat, Time } from "../layout";
import { deliveryHref } from "./deliveries";
import { BreakerBadge, describeAuth, FieldErrors, StateBadge, TargetStateBadge } from "./parts";

/** Tabs of the target's delivery list; `all` lists every state. */
export const TARGET_TABS = ["dead", "held", "pending", "delivered", "all"] as const;
export type TargetTab = (typeof TARGET_TABS)[number];

/** A target: health, configuration (secret names only), deliveries by state, and its buttons. */
export const TargetPage: FC<{
  page: PageContext;
  id: string;
  listed: Listed<TargetConfig> | null;
  health: OutboxHealth;
  tab: TargetTab;
  items: DispatchView[];
  next: string | null;
  notice: Flash;
  /** The newest audit entries concerning the target; null when the caller may not read the trail. */
  trail?: AuditLine[] | null;
  /** Hourly trends of the last 24 hours and 7 days (charts). */
  trends?: { day: TrendPoint[]; week: TrendPoint[] } | null;
}> = ({ page, id, listed, health, tab, items, next, notice, trail = null, trends = null }) => {
  const base = `/admin/ui/targets/${id}`;
  const c = health.counts;
  const canResume = health.heldBy !== null || c.held > 0 || health.breaker.status !== "closed";
  return (
    <Layout title={`Target ${id}`} page={page} nav="overview" signedIn>
      <p class="small">
        <a href="/admin/">← Overview</a>
      </p>
      <div class="head">
        <div>
          <h1>
            Target {id} {listed ? <TargetStateBadge listed={listed} health={health} /> : <Badge tone="bad">no document</Badge>}
          </h1>
          <p class="sub mono">{listed?.valid ? listed.config.url : "—"}</p>
        </div>
        <div class="row">
          {canResume && can(page, "operator") && (
            <PostForm action={`${base}/resume`} csrf={page.csrf} label="Resume" describedBy="resume-help" reason="optional" />
          )}
          {c.dead > 0 && can(page, "operator") && (
            <PostForm
              action={`${base}/replay-dead`}
              csrf={page.csrf}
              label={`Replay ${plural(c.dead, "dead delivery", "dead deliveries")}`}
              variant="secondary"
              reason="required"
            />
          )}
          {listed?.valid && !listed.config.enabled && can(page, "admin") && (
            <PostForm action={`${base}/enable`} csrf={page.csrf} label="Enable" reason="optional" />
          )}
          {listed?.valid && listed.config.enabled && can(page, "admin") && (
            <PostForm action={`${base}/disable`} csrf={page.csrf} label="Disable" variant="danger" reason="optional" />
          )}
        </div>
      </div>
      {canResume && (
        <p id="resume-help" class="muted small">
          Resume sends held deliveries again with a fresh retry window, lifts a 410 pause and closes the circuit breaker.
        </p>
      )}
      {notice && <Notice tone={notice.tone}>{notice.text}</Notice>}
      {health.heldReason && (
        <Notice tone={health.heldBy === "gone" ? "bad" : "warn"}>
          <strong>{health.heldBy === "gone" ? "Paused:" : "Holding:"}</strong> {health.heldReason}
        </Notice>
      )}
      {listed && !listed.valid && (
        <Notice tone="bad">
          The target document is invalid; this target receives nothing until it is fixed:
          <FieldErrors errors={listed.errors} />
        </Notice>
      )}

      <div class="grid">
        <Stat value={c.pending + c.delivering} label="pending" />
        <Stat value={health.oldestPendingAgeMs === null ? "—" : formatDuration(health.oldestPendingAgeMs)} label="oldest pending" />
        <Stat value={c.delivered} label="delivered" />
        <Stat value={c.dead} label="dead" tone={c.dead > 0 ? "bad" : undefined} />
        <Stat value={c.held} label="held" tone={c.held > 0 ? "warn" : undefined} />
        <Stat value={<BreakerBadge status={health.breaker.status} />} label={`breaker · ${plural(health.breaker.consecutiveFailures, "failure")} in a row`} />
      </div>

      <section class="card" aria-labelledby="health-h">
        <h2 id="health-h">Health</h2>
        <dl class="kv">
          <dt>Last success</dt>
          <dd>
            {health.lastSuccessAt === null ? (
              <span class="muted">never</span>
            ) : (
              <>
                {formatTime(health.lastSuccessAt)} (<Time ms={health.lastSuccessAt} now={page.now} />)
              </>
            )}
          </dd>
          <dt>Last error</dt>
          <dd>
            {health.lastError === null ? (
              <span class="muted">none</span>
            ) : (
              <>
                {health.lastError.message} <span class="muted">({formatTime(health.lastError.at)})</span>
              </>
            )}
          </dd>
          {health.breaker.probeAt !== null && (
            <>
              <dt>Next probe</dt>
              <dd>
                <Time ms={health.breaker.probeAt} now={page.now} />
              </dd>
            </>
          )}
          <dt>Retention</dt>
          <dd>
            delivered events kept {plural(health.retention.days, "day")} (dead and held ones until resolved);{" "}
            {health.retention.prunedDispatches === 0
              ? "nothing pruned yet"
              : `${plural(health.retention.prunedDispatches, "delivered event")} and ${plural(health.retention.prunedAttempts, "attempt")} pruned, last ${formatTime(health.retention.lastPrunedAt)} (still counted as delivered)`}
          </dd>
        </dl>
      </section>

      {trends && (
        <section class="card" aria-labelledby="trends-h">
          <h2 id="trends-h">Trends</h2>
          <TargetCharts day={trends.day} week={trends.week} />
        </section>
      )}

      <section class="card flush" aria-labelledby="list-h">
        <div class="head">
          <h2 id="list-h">Deliveries</h2>
          <nav aria-label="Delivery state" class="row small">
            {TARGET_TABS.map((t) => (
              <a href={`${base}?state=${t}`} aria-current={t === tab ? "page" : undefined} class={t === tab ? "button" : "button secondary"}>
                {t === "all" ? "all" : `${t} (${t === "pending" ? c.pending + c.delivering : c[t as Exclude<DispatchState, "delivering">]})`}
              </a>
            ))}
          </nav>
        </div>
        {items.length === 0 ? (
          <p class="empty">{tab === "dead" ? "No dead letters." : "Nothing here."}</p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Received</th>
                  <th scope="col">Source</th>
                  <th scope="col">Delivery id</th>
                  <th scope="col">Kind</th>
                  <th scope="col">State</th>
                  <th scope="col" class="num">
                    Attempts
                  </th>
                  <th scope="col">Next / done</th>
                  <th scope="col">Last error</th>
                </tr>
              </thead>
              <tbody>
                {items.map((d) => (
                  <tr>
                    <td class="nowrap">{formatTime(d.receivedAt)}</td>
                    <td class="nowrap">{d.source}</td>
                    <td class="mono nowrap">
                      <a href={deliveryHref(d.source, d.deliveryId)}>{truncate(d.deliveryId, 40)}</a>
                    </td>
                    <td>
                      <code>{d.kind}</code>
                    </td>
                    <td>
                      <StateBadge state={d.state} />
                    </td>
                    <td class="num">{d.windowAttempts}</td>
                    <td>{d.state === "delivered" ? formatTime(d.deliveredAt) : d.nextAt !== null ? <Time ms={d.nextAt} now={page.now} /> : "—"}</td>
                    <td class="small">{d.lastError ? <span title={d.lastError}>{truncate(d.lastError, 80)}</span> : <span class="muted">—</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {next && (
          <div class="pager">
            <span />
            <a class="button secondary" href={`${base}?state=${tab}&cursor=${next}`}>
              Older →
            </a>
          </div>
        )}
      </section>

      {listed?.valid && (
        <section class="card" aria-labelledby="config-h">
          <h2 id="config-h">Configuration</h2>
          <dl class="kv">
            <dt>URL</dt>
            <dd class="mono">{listed.config.url}</dd>
            {listed.config.description && (
              <>
                <dt>Description</dt>
                <dd>{listed.config.description}</dd>
              </>
            )}
            <dt>Events</dt>
            <dd class="mono">{listed.config.events.join(", ")}</dd>
            <dt>Sources</dt>
            <dd class="mono">{listed.config.sources.join(", ")}</dd>
            <dt>Format</dt>
            <dd>{listed.config.format === "raw" ? "raw CentrePoint body" : "CloudEvents JSON"}</dd>
            <dt>Outbound auth</dt>
            <dd>{describeAuth(listed.config.auth)}</dd>
            <dt>Signing</dt>
            <dd>{listed.config.signing ? `Standard Webhooks signature, key in secret ${listed.config.signing.secretEnv}` : "none"}</dd>
            {listed.config.filter && (
              <>
                <dt>Filter</dt>
                <dd>
                  <pre class="mono">{listed.config.filter}</pre>
                </dd>
              </>
            )}
            {listed.config.transform && (
              <>
                <dt>Transform</dt>
                <dd>
                  {listed.config.transform.method} as <code>{listed.config.transform.contentType}</code>
                  {listed.config.transform.secrets.length > 0 && <>, $secret of {listed.config.transform.secrets.join(", ")}</>}
                  <pre class="mono">{listed.config.transform.body}</pre>
                  {Object.entries(listed.config.transform.headers ?? {}).map(([name, expression]) => (
                    <div class="small">
                      header <code>{name}</code>: <code>{expression}</code>
                    </div>
                  ))}
                  <div class="small muted">An expression that fails makes the dispatch dead with error class transform and its message (see Dead).</div>
                </dd>
              </>
            )}
            <dt>Ordered</dt>
            <dd>{listed.config.ordered ? "yes, per subject" : "no"}</dd>
            <dt>Timeout</dt>
            <dd>{formatDuration(listed.config.timeoutMs)}</dd>
            <dt>Retries</dt>
            <dd>
              backoff {formatDuration(listed.config.retry.baseDelayMs)} doubling to {formatDuration(listed.config.retry.maxDelayMs)}, for{" "}
              {formatDuration(listed.config.retry.windowMs)}
              {listed.config.retry.maxAttempts !== undefined && ` or ${plural(listed.config.retry.maxAttempts, "attempt")}`}
            </dd>
          </dl>
        </section>
      )}
      <AuditCard page={page} items={trail} object={`target:${id}`} />
    </Layout>
  );
};
