import type { FC } from "hono/jsx";
import type { DeliveryPull } from "../../service/pull";
import type { PullSummary } from "../../service/pull";
import type { RawRequestView } from "../../../pull/requests";
import { formatTime, plural, truncate } from "../format";
import { Badge, can, type Issue, type PageContext, PostForm, Time, type Tone } from "../layout";
import { deliveryHref } from "./deliveries";

/** The pull side of the dashboard (docs/pull.md): a delivery's enrichment, raw-data requests and downloads; the overview's part. */

const ENRICHMENT_TONE: Record<string, Tone> = { pending: "info", complete: "ok", partial: "warn", failed: "bad" };
const REQUEST_TONE: Record<string, Tone> = {
  queued: "info",
  submitting: "info",
  active: "info",
  completed: "ok",
  error: "bad",
  failed: "bad",
  lost: "bad",
  invalid: "warn",
};

/** A delivery's enrichment, raw-data requests and file downloads, with the "Retry enrichment" and "Release" actions. */
export const PullSection: FC<{ page: PageContext; pull: DeliveryPull; source: string; self: string }> = ({ page, pull, source, self }) => (
  <>
    {pull.enrichment && <EnrichmentCard page={page} e={pull.enrichment} self={self} />}
    {pull.completes && (
      <p class="notice info" role="status">
        This event completes the raw-data request the relay made for delivery{" "}
        <a class="mono" href={deliveryHref(pull.completes.source, pull.completes.deliveryId)}>
          {pull.completes.deliveryId}
        </a>
        {pull.completes.source !== source && <> of source {pull.completes.source}</>} (CloudEvents attribute <code>triggerdelivery</code>).
      </p>
    )}
    {pull.rawRequests.length > 0 && <RawRequestsCard page={page} requests={pull.rawRequests} source={source} />}
    {pull.downloads.length > 0 && <DownloadsCard downloads={pull.downloads} />}
  </>
);

const EnrichmentCard: FC<{ page: PageContext; e: NonNullable<DeliveryPull["enrichment"]>; self: string }> = ({ page, e, self }) => {
  const waiting = e.targets.filter((t) => t.waiting !== "handed");
  const held = waiting.filter((t) => t.waiting === "held");
  const errors = Object.entries(e.stored?.errors ?? {});
  return (
    <section class="card" aria-labelledby="enrichment-h">
      <div class="head">
        <div class="row">
          <h2 id="enrichment-h">Enrichment</h2>
          <Badge tone={ENRICHMENT_TONE[e.state ?? ""] ?? "muted"}>{e.state === "pending" ? "looking up" : (e.state ?? "unknown")}</Badge>
        </div>
        <div class="row">
          {can(page, "operator") && <PostForm action={`${self}/enrichment/retry`} csrf={page.csrf} label="Retry enrichment" variant="secondary" />}
          {waiting.length > 0 && can(page, "operator") && (
            <PostForm action={`${self}/enrichment/release`} csrf={page.csrf} label={`Release ${plural(waiting.length, "waiting target")}`} reason="required" />
          )}
        </div>
      </div>
      {held.length > 0 && (
        <p class="notice warn" role="status">
          Held: {held.map((t) => t.targetId).join(", ")} {held.length === 1 ? "requires" : "require"} enrichment (<code>enrichRequired</code>) and{" "}
          {held.length === 1 ? "waits" : "wait"} until it succeeds or you release {held.length === 1 ? "it" : "them"}.
          {errors.length > 0 && <> Last error: {truncate(errors.map(([f, r]) => `${f}: ${r}`).join("; "), 300)}</>}
        </p>
      )}
      <dl class="kv small">
        <dt>Facts</dt>
        <dd>{e.facts.length > 0 ? e.facts.join(", ") : "—"}</dd>
        <dt>Lookups</dt>
        <dd>
          {e.job ? (
            <>
              {plural(e.job.attempts, "attempt")}
              {e.state === "pending" && e.job.nextAt !== null && (
                <>
                  , next <Time ms={e.job.nextAt} now={page.now} />
                </>
              )}
              , last {formatTime(e.job.updatedAt)}
            </>
          ) : (
            <span class="muted">no job (not started, or settled more than 30 days ago)</span>
          )}
        </dd>
        {errors.length > 0 && (
          <>
            <dt>Not found</dt>
            <dd>
              {errors.map(([fact, reason]) => (
                <div>
                  <code>{fact}</code> {reason}
                </div>
              ))}
            </dd>
          </>
        )}
        {e.releasedAt !== null && (
          <>
            <dt>Released</dt>
            <dd>by an operator {formatTime(e.releasedAt)}</dd>
          </>
        )}
        <dt>Targets</dt>
        <dd>
          {e.targets.map((t) => (
            <div>
              <a href={`/admin/ui/targets/${t.targetId}`}>{t.targetId}</a> ({t.facts.join(", ")}):{" "}
              {t.waiting === "handed" ? (
                <>handed over {formatTime(t.handedAt)}</>
              ) : t.waiting === "held" ? (
                <Badge tone="warn">held until enriched or released</Badge>
              ) : (
                <>
                  waits, at most until <Time ms={t.deadlineAt} now={page.now} />
                </>
              )}
            </div>
          ))}
        </dd>
      </dl>
      {e.stored && Object.keys(e.stored.found).length > 0 && (
        <details>
          <summary>Facts found (stored beside the record; the hash-chained record is unchanged)</summary>
          <pre>{JSON.stringify(e.stored.found, null, 2)}</pre>
        </details>
      )}
    </section>
  );
};

const RawRequestsCard: FC<{ page: PageContext; requests: RawRequestView[]; source: string }> = ({ page, requests, source }) => (
  <section class="card flush" aria-labelledby="raw-h">
    <div class="head">
      <h2 id="raw-h">Raw-data requests</h2>
      <span class="muted small">made automatically (autoRequest); at most 10 active per API client</span>
    </div>
    <div class="scroll">
      <table>
        <thead>
          <tr>
            <th scope="col">Part</th>
            <th scope="col">Range (UTC)</th>
            <th scope="col">State</th>
            <th scope="col">Tracking id</th>
            <th scope="col">Triggered by</th>
            <th scope="col">Completed by</th>
          </tr>
        </thead>
        <tbody>
          {requests.map((r) => (
            <tr>
              <td>
                {r.part}/{r.parts} <span class="muted small">{r.fileFormat}</span>
              </td>
              <td class="small mono">
                {r.beginUtc} → {r.endUtc}
              </td>
              <td>
                <Badge tone={REQUEST_TONE[r.state] ?? "muted"}>{r.state}</Badge>
                {r.overdue && <Badge tone="bad">overdue</Badge>}
                {r.state === "queued" && r.nextAt !== null && (
                  <div class="muted small">
                    next try <Time ms={r.nextAt} now={page.now} />
                  </div>
                )}
                {r.error && <div class="small">{truncate(r.error, 200)}</div>}
              </td>
              <td class="mono small">{r.trackingId ?? "—"}</td>
              <td class="small">
                {r.triggeredBy.map((id) => (
                  <div>
                    <a class="mono" href={deliveryHref(r.source, id)}>
                      {truncate(id, 40)}
                    </a>
                  </div>
                ))}
              </td>
              <td class="small">
                {r.completionDeliveryId ? (
                  <a class="mono" href={deliveryHref(source, r.completionDeliveryId)}>
                    {truncate(r.completionDeliveryId, 40)}
                  </a>
                ) : (
                  "—"
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  </section>
);

const DownloadsCard: FC<{ downloads: DeliveryPull["downloads"] }> = ({ downloads }) => (
  <section class="card flush" aria-labelledby="downloads-h">
    <div class="head">
      <h2 id="downloads-h">File downloads</h2>
      <span class="muted small">through the relay's links: who (the target the link was issued to), which file, how often, when, from where</span>
    </div>
    <div class="scroll">
      <table>
        <thead>
          <tr>
            <th scope="col">Latest</th>
            <th scope="col">First</th>
            <th scope="col">Times</th>
            <th scope="col">Target</th>
            <th scope="col">File</th>
            <th scope="col">Address (latest, first)</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {downloads.map((d) => (
            <tr>
              <td>{formatTime(d.at)}</td>
              <td>{formatTime(d.firstAt)}</td>
              <td class="num">{d.count}</td>
              <td>
                <a href={`/admin/ui/targets/${d.targetId}`}>{d.targetId}</a>
              </td>
              <td class="mono small">{d.fileId}</td>
              <td class="mono small">
                {d.clientIp ?? "—"}
                {d.firstIp !== d.clientIp && ` (first ${d.firstIp ?? "—"})`}
              </td>
              <td>{d.outcome === "redirected" ? <Badge tone="ok">redirected</Badge> : <Badge tone="bad">{d.outcome}</Badge>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  </section>
);

/** What the pull side asks of an operator: reported raw-data requests, held events, failed enrichments, link settings. Pure. */
export function pullIssues(pull: PullSummary | null): Issue[] {
  if (!pull) return [];
  const issues: Issue[] = pull.linkWarnings.map((text) => ({ tone: "warn" as const, text, href: "/admin/" }));
  for (const s of pull.sources) {
    const href = `/admin/ui/deliveries?source=${s.id}`;
    if (s.ledger.held > 0)
      issues.push({
        tone: "warn",
        text: `Source ${s.id}: ${plural(s.ledger.held, "event")} held until enrichment succeeds (enrichRequired); open them to retry or release.`,
        href,
      });
    const failed = s.jobs?.outcomes.failed ?? 0;
    if (failed > 0)
      issues.push({ tone: "warn", text: `Source ${s.id}: ${plural(failed, "enrichment")} failed (events went out with enrichment.status "failed").`, href });
  }
  for (const c of pull.clients) {
    for (const r of c.summary.reported.slice(0, 5))
      issues.push({
        tone: "bad",
        text: `Raw-data request ${r.trackingId ?? `#${r.id}`} (source ${r.source}, subject ${r.subjectId}): ${r.overdue && r.state === "active" ? "overdue, still active past CentrePoint's 6-hour cancel" : r.state}${r.error ? `: ${truncate(r.error, 120)}` : ""}`,
        href: deliveryHref(r.source, r.triggerDeliveryId),
      });
  }
  return issues;
}

/** Queued and active raw-data requests, and failed enrichments, across the relay (the overview's numbers). */
export function pullTotals(pull: PullSummary | null): { queued: number; active: number; enrichmentFailures: number } {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    queued: sum(pull?.clients.map((c) => c.summary.requests.queued) ?? []),
    active: sum(pull?.clients.map((c) => c.summary.requests.active) ?? []),
    enrichmentFailures: sum(pull?.sources.map((s) => s.jobs?.outcomes.failed ?? 0) ?? []),
  };
}
