import { AuditCard } from "./audit";
import type { AuditLine } from "../../../audit/format";
import type { FC } from "hono/jsx";
import { toBase64 } from "../../../lib/crypto";
import type { DeliveryDetail, DeliveryTarget } from "../../service/deliveries";
import { formatBytes, formatDuration, formatTime, plural, prettyJson } from "../format";
import { Badge, can, type Flash, Layout, Notice, type PageContext, PostForm, Time } from "../layout";
import type { Preview } from "../../service/preview";
import { OutcomeBadge, StateBadge } from "./parts";
import { PullSection } from "./pull";
import { deliveryHref } from "./deliveries";

/** One delivery: what arrived, and per target every attempt, with replay. */
export const DeliveryPage: FC<{ page: PageContext; d: DeliveryDetail; notice: Flash; trail?: AuditLine[] | null }> = ({ page, d, notice, trail = null }) => {
  const self = deliveryHref(d.source, d.deliveryId);
  // A handed-over event whose dispatch retention pruned is replayable too (the ledger hands it again).
  const replayable = d.targets.some((t) => t.dispatch !== null || t.handoff.handedAt !== null);
  return (
    <Layout title={`Delivery ${d.deliveryId}`} page={page} nav="deliveries" signedIn>
      <p class="small">
        <a href="/admin/ui/deliveries">← Deliveries</a>
      </p>
      <div class="head">
        <div>
          <h1 class="mono">{d.deliveryId}</h1>
          <p class="sub">
            <code>{d.kind}</code> from source <a href={`/admin/ui/sources/${d.source}`}>{d.source}</a>, received {formatTime(d.receivedAt)}
            {d.subject && (
              <>
                {" "}
                · <span class="mono">{d.subject}</span>
              </>
            )}
          </p>
        </div>
        <div class="row">
          <a class="button secondary" href={`/admin/deliveries/${encodeURIComponent(d.source)}/${encodeURIComponent(d.deliveryId)}`}>
            JSON
          </a>
          {replayable && can(page, "operator") && <PostForm action={`${self}/replay`} csrf={page.csrf} label="Replay to all targets" reason="optional" />}
        </div>
      </div>
      {notice && <Notice tone={notice.tone}>{notice.text}</Notice>}
      {d.attention && (
        <Notice tone="warn">
          <strong>Needs attention:</strong> {d.attention}
        </Notice>
      )}

      <PullSection page={page} pull={d.pull} source={d.source} self={self} />

      <section class="card flush" aria-labelledby="targets-h">
        <div class="head">
          <h2 id="targets-h">Targets</h2>
          <span class="muted small">{plural(d.targets.length, "target")} wanted this event when it arrived</span>
        </div>
        {d.targets.length === 0 && (
          <p class="empty">
            No target wanted this event (check the targets' <code>events</code> and <code>sources</code> filters).
          </p>
        )}
        {d.targets.map((t) => (
          <TargetTimeline t={t} page={page} replayAction={`${self}/replay`} />
        ))}
      </section>

      <section class="card" aria-labelledby="record-h">
        <h2 id="record-h">Record</h2>
        <dl class="kv">
          <dt>Delivery id</dt>
          <dd class="mono">
            {d.deliveryId} {d.idDerived && <Badge tone="muted">derived from the body (no X-ActiGraph-Delivery)</Badge>}
          </dd>
          <dt>Event header</dt>
          <dd>{d.event ? <code>{d.event}</code> : <span class="muted">absent</span>}</dd>
          <dt>Kind</dt>
          <dd>
            <code>{d.kind}</code>
          </dd>
          <dt>Subject</dt>
          <dd class="mono">{d.subject ?? "—"}</dd>
          <dt>Received</dt>
          <dd>
            {formatTime(d.receivedAt)}{" "}
            <span class="muted">
              (<Time ms={d.receivedAt} now={page.now} />)
            </span>
          </dd>
          <dt>Copies</dt>
          <dd>{d.duplicateCount === 0 ? "received once" : `received ${d.duplicateCount + 1} times; last copy ${formatTime(d.lastSeenAt)}`}</dd>
          <dt>Arrived</dt>
          <dd>
            {d.provenance === "centrepoint-history" ? (
              <>
                <Badge tone="info">backfilled</Badge> read from CentrePoint's delivery history by a reconciliation (authenticated by the API's OAuth client, not
                by a webhook signature): it never reached the relay as a webhook
              </>
            ) : (
              "pushed by CentrePoint"
            )}
          </dd>
          <dt>Source address</dt>
          <dd class="mono">{d.sourceIp ?? "—"}</dd>
          <dt>Body</dt>
          <dd>
            {formatBytes(d.bodySize)}, SHA-256 <span class="mono small">{d.bodySha256}</span>
            {d.bodyPrunedAt !== null && <span class="muted"> — pruned {formatTime(d.bodyPrunedAt)} (retention); the archive keeps it</span>}
          </dd>
          <dt>Ledger record</dt>
          <dd>
            #{d.seq}, hash <span class="mono small">{d.recordHash}</span>
          </dd>
        </dl>
      </section>

      {d.bodyPrunedAt !== null ? (
        <section class="card" aria-labelledby="body-h">
          <h2 id="body-h">Body and envelope</h2>
          <Notice tone="info">
            Pruned {formatTime(d.bodyPrunedAt)} under the source's retention. Their SHA-256 stays in the hash chain; the R2 archive keeps the original, and a
            replay reads it back from there.
          </Notice>
        </section>
      ) : (
        <>
          <section class="card" aria-labelledby="body-h">
            <div class="head">
              <h2 id="body-h">Raw body</h2>
              <span class="muted small">byte-exact as received</span>
            </div>
            <pre tabindex={0} aria-labelledby="body-h">
              {new TextDecoder().decode(d.body)}
            </pre>
            <details>
              <summary>Base64</summary>
              <pre class="small">{toBase64(d.body)}</pre>
            </details>
          </section>

          <section class="card" aria-labelledby="envelope-h">
            <div class="head">
              <h2 id="envelope-h">Envelope</h2>
              <span class="muted small">CloudEvents 1.0, as sent to targets</span>
            </div>
            <pre tabindex={0} aria-labelledby="envelope-h">
              {JSON.stringify(d.envelope, null, 2)}
            </pre>
          </section>
        </>
      )}

      <section class="card flush" aria-labelledby="headers-h">
        <div class="head">
          <h2 id="headers-h">Request headers</h2>
          <span class="muted small">as received; credentials redacted before storage</span>
        </div>
        <div class="scroll">
          <table>
            <tbody>
              {Object.entries(d.headers)
                .sort(([a], [b]) => a.localeCompare(b))
                .map(([name, value]) => (
                  <tr>
                    <th scope="row" class="mono">
                      {name}
                    </th>
                    <td class="mono">{value}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      </section>
      <AuditCard page={page} items={trail} object={`delivery:${d.deliveryId}`} />
    </Layout>
  );
};

/** One target's part: hand-off, outbox state, every attempt oldest first, and its replay button. */
const TargetTimeline: FC<{ t: DeliveryTarget; page: PageContext; replayAction: string }> = ({ t, page, replayAction }) => {
  const view = t.dispatch;
  const pruned = view === null && t.handoff.handedAt !== null;
  const attempts = t.attempts;
  const headingId = `target-${t.target}`;
  return (
    <article class="target" aria-labelledby={headingId}>
      <div class="head">
        <div class="row">
          <h3 id={headingId}>
            <a href={`/admin/ui/targets/${t.target}`}>{t.target}</a>
          </h3>
          {view ? (
            <StateBadge state={view.state} />
          ) : pruned ? (
            <Badge tone="muted">pruned after delivery</Badge>
          ) : (
            <Badge tone="info">not handed over yet</Badge>
          )}
        </div>
        <div class="row">
          <a class="button secondary" href={`${replayAction.replace(/\/replay$/, "/preview")}?target=${encodeURIComponent(t.target)}`}>
            Preview
          </a>
          {(view || pruned) && can(page, "operator") && (
            <PostForm action={replayAction} csrf={page.csrf} label={`Replay to ${t.target}`} fields={{ target: t.target }} variant="secondary" />
          )}
        </div>
      </div>
      <dl class="kv small">
        <dt>Hand-off</dt>
        <dd>
          {t.handoff.handedAt === null ? (
            <>
              planned {formatTime(t.handoff.plannedAt)}, {plural(t.handoff.tries, "try", "tries")} so far
              {t.handoff.lastError && <> — last error: {t.handoff.lastError}</>}
            </>
          ) : (
            <>handed to the target's outbox {formatTime(t.handoff.handedAt)}</>
          )}
        </dd>
        {pruned && (
          <>
            <dt>Status</dt>
            <dd>its dispatch and attempts were pruned after the target's retention; a replay hands it to the target again</dd>
          </>
        )}
        {view && (
          <>
            <dt>Status</dt>
            <dd>
              {view.state === "delivered" && <>delivered {formatTime(view.deliveredAt)}</>}
              {view.state === "pending" && (
                <>
                  next attempt <Time ms={view.nextAt} now={page.now} />
                </>
              )}
              {view.state === "delivering" && <>an attempt is in flight</>}
              {view.state === "dead" && <>dead after {plural(view.windowAttempts, "attempt")}: waiting for replay</>}
              {view.state === "held" && <>held: the target is paused or misconfigured; resume it on the target's page</>}
              {view.lastError && view.state !== "delivered" && <div class="muted">last error: {view.lastError}</div>}
            </dd>
          </>
        )}
      </dl>
      {attempts.length > 0 && (
        <div class="scroll timeline">
          <table>
            <caption class="sr-only">Attempts to {t.target}, oldest first</caption>
            <thead>
              <tr>
                <th scope="col" class="num">
                  #
                </th>
                <th scope="col">Started</th>
                <th scope="col">Outcome</th>
                <th scope="col" class="num">
                  HTTP
                </th>
                <th scope="col" class="num">
                  Took
                </th>
                <th scope="col">Error / response</th>
              </tr>
            </thead>
            <tbody>
              {attempts.map((a) => (
                <tr>
                  <td class="num">{a.n}</td>
                  <td>{formatTime(a.startedAt)}</td>
                  <td>
                    <OutcomeBadge outcome={a.outcome} />
                  </td>
                  <td class="num">{a.status ?? "—"}</td>
                  <td class="num">{formatDuration(a.durationMs)}</td>
                  <td class="small">
                    {a.error && (
                      <div>
                        {a.errorClass && <code>{a.errorClass}</code>} {a.error}
                      </div>
                    )}
                    {(a.responseBody || a.responseHeaders) && (
                      <details>
                        <summary>Response</summary>
                        {a.responseHeaders && (
                          <pre>
                            {Object.entries(a.responseHeaders)
                              .map(([k, v]) => `${k}: ${v}`)
                              .join("\n")}
                          </pre>
                        )}
                        {a.responseBody && <pre>{prettyJson(a.responseBody)}</pre>}
                      </details>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </article>
  );
};

/** A delivery as one target would get it now (its filter, transform, auth and signing), secrets redacted; nothing is sent. */
export const PreviewPage: FC<{ page: PageContext; source: string; deliveryId: string; target: string; preview: Preview }> = ({
  page,
  source,
  deliveryId,
  target,
  preview,
}) => (
  <Layout title={`Preview for ${target}`} page={page} nav="deliveries" signedIn>
    <p class="small">
      <a href={deliveryHref(source, deliveryId)}>← Delivery {deliveryId}</a>
    </p>
    <h1>
      Preview for <a href={`/admin/ui/targets/${target}`}>{target}</a>
    </h1>
    <p class="sub">What the target's document as saved now would send for this delivery. Nothing is sent; secret values are never shown.</p>
    {!preview.wanted && <Notice tone="warn">The target's filter does not want this delivery: it would be not_wanted, nothing sent.</Notice>}
    {preview.error && (
      <Notice tone="bad">
        <strong>Expression error:</strong> {preview.error}
      </Notice>
    )}
    {preview.request && (
      <section class="card" aria-labelledby="preview-h">
        <h2 id="preview-h" class="mono">
          {preview.request.method} {preview.request.url}
        </h2>
        <dl class="kv small">
          {Object.entries(preview.request.headers).map(([k, v]) => (
            <>
              <dt class="mono">{k}</dt>
              <dd class="mono">{v}</dd>
            </>
          ))}
        </dl>
        <pre class="mono">{preview.request.body}</pre>
      </section>
    )}
  </Layout>
);
