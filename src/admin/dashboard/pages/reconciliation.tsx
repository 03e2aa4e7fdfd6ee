import type { FC } from "hono/jsx";
import type { CentrePointApiConfig } from "../../../config/schemas";
import type { ReconcileReport, ReconcileSummary } from "../../../reconcile/reconciler";
import { formatDuration, formatTime, plural, truncate } from "../format";
import { Badge, can, Notice, type PageContext, PostForm, Stat, type Tone, Time } from "../layout";
import { backfilledHref, deliveryHref } from "./deliveries";

/** The source page's CentrePoint API part: the registration check and reconciliation against CentrePoint's delivery history. */

/** Backfilled ids listed on the page at most (the report keeps up to 1,000; the deliveries page has them all). */
const BACKFILLED_SHOWN = 20;

const OUTCOME: Record<ReconcileReport["outcome"], { tone: Tone; text: string }> = {
  running: { tone: "info", text: "running" },
  ok: { tone: "ok", text: "complete" },
  errors: { tone: "warn", text: "complete with errors" },
  failed: { tone: "bad", text: "failed" },
};

/** A run's outcome. */
export const RunOutcomeBadge: FC<{ outcome: ReconcileReport["outcome"] }> = ({ outcome }) => (
  <Badge tone={OUTCOME[outcome].tone}>{OUTCOME[outcome].text}</Badge>
);

/** The registration check and reconciliation of a source; without a `centrepoint` block, how to add one. */
export const CentrePointApiSection: FC<{ page: PageContext; id: string; block: CentrePointApiConfig | undefined; summary: ReconcileSummary | null }> = ({
  page,
  id,
  block,
  summary,
}) => {
  if (!block || !summary)
    return (
      <section class="card" aria-labelledby="cp-h">
        <h2 id="cp-h">CentrePoint API</h2>
        <p class="muted">
          Not configured. Add a <code>centrepoint</code> block (study id, webhook id, and the Worker secrets holding the study's API client) to this source's
          document, and the relay reconciles its ledger against CentrePoint's delivery history and checks the webhook's registration.
        </p>
      </section>
    );
  const base = `/admin/ui/sources/${id}`;
  const latest = summary.latest;
  const schedule = block.reconcile.everyMinutes === 0 ? "scheduled runs off" : `every ${formatDuration(block.reconcile.everyMinutes * 60_000)}`;
  return (
    <>
      <section class="card" aria-labelledby="reg-h">
        <div class="head">
          <h2 id="reg-h">Webhook registration in CentrePoint</h2>
          <PostForm action={`${base}/registration`} csrf={page.csrf} label="Check registration now" variant="secondary" />
        </div>
        <RegistrationView check={summary.registration} now={page.now} />
      </section>

      <section class="card" aria-labelledby="rec-h">
        <div class="head">
          <div>
            <h2 id="rec-h">Reconciliation with CentrePoint's delivery history</h2>
            <p class="muted small">
              Study {block.studyId}, webhook {block.webhookId}; API client in secrets {block.clientIdEnv} and {block.clientSecretEnv}; {schedule}, look-back{" "}
              {formatDuration(block.reconcile.lookbackHours * 3_600_000)}.
            </p>
          </div>
          {can(page, "operator") && (
            <PostForm action={`${base}/reconcile`} csrf={page.csrf} label={latest?.complete === false ? "Continue now" : "Run reconciliation"} />
          )}
        </div>
        {!latest ? (
          <p class="muted">
            No run yet. A run reads every page of the webhook's history and records each delivery the ledger is missing, exactly as if CentrePoint had pushed
            it; nothing the ledger already has is sent again.
          </p>
        ) : (
          <ReportView report={latest} id={id} now={page.now} />
        )}
        {latest && !latest.complete && summary.lastFinished && (
          <p class="small muted">
            Previous run: <RunOutcomeBadge outcome={summary.lastFinished.outcome} /> {formatTime(summary.lastFinished.finishedAt)},{" "}
            {plural(summary.lastFinished.backfilled, "delivery", "deliveries")} backfilled.
          </p>
        )}
        <p class="small">
          <a href={backfilledHref(id)}>Every delivery of {id} backfilled from CentrePoint's history</a>
          {summary.totals.backfilled > 0 && ` (${summary.totals.backfilled} so far)`}
        </p>
      </section>
    </>
  );
};

/** One report, or the progress of the run in progress. */
const ReportView: FC<{ report: ReconcileReport; id: string; now: number }> = ({ report: r, id, now }) => (
  <>
    {!r.complete ? (
      <Notice tone="info">
        Running since <Time ms={r.startedAt} now={now} />: {plural(r.pages, "page")} and {plural(r.scanned, "history row")} read so far
        {r.backfilled > 0 && `, ${plural(r.backfilled, "delivery", "deliveries")} backfilled`}. It continues in the background; reload this page to follow it.
      </Notice>
    ) : (
      <p class="row">
        <RunOutcomeBadge outcome={r.outcome} />
        <span>
          {r.trigger === "manual" ? "Run on demand" : "Scheduled run"}, finished {formatTime(r.finishedAt)} (<Time ms={r.finishedAt} now={now} />
          ), history since {formatTime(r.lookbackFrom)}.
        </span>
      </p>
    )}
    {r.outcome === "failed" && <Notice tone="bad">The run stopped: {r.firstError}</Notice>}
    {r.outcome === "errors" && (
      <Notice tone="warn">
        {plural(r.errors, "error")}; the first: {r.firstError}
      </Notice>
    )}
    <div class="grid">
      <Stat value={r.scanned} label="history rows read" />
      <Stat value={r.matched} label="already recorded" />
      {r.knownPruned > 0 && <Stat value={r.knownPruned} label="recorded, removed by retention" />}
      <Stat value={r.backfilled} label="backfilled" tone={r.backfilled > 0 ? "warn" : undefined} />
      <Stat value={r.recordedButFailedAtCentrePoint} label="recorded, failed at CentrePoint" />
      <Stat value={r.skipped} label="handshakes and pings" />
      <Stat value={r.errors} label="errors" tone={r.errors > 0 ? "bad" : undefined} />
    </div>
    {r.recordedButFailedAtCentrePoint > 0 && (
      <p class="small muted">
        {plural(r.recordedButFailedAtCentrePoint, "delivery", "deliveries")} reached the relay but CentrePoint logged only failures for{" "}
        {r.recordedButFailedAtCentrePoint === 1 ? "it" : "them"}: the relay's answer did not reach CentrePoint (a timeout or network problem on the way back).
        Nothing was lost, and CentrePoint's own retries will be answered "duplicate".
      </p>
    )}
    {r.knownPruned > 0 && (
      <p class="small muted">
        {plural(r.knownPruned, "delivery", "deliveries")} of this history {r.knownPruned === 1 ? "was" : "were"} recorded and removed by the source's retention
        since (the archive keeps {r.knownPruned === 1 ? "it" : "them"}): the ledger keeps removed ids 100 days, so they are never backfilled or sent again.
      </p>
    )}
    {r.backfilledIds.length > 0 && (
      <details open={r.backfilledIds.length <= 5}>
        <summary>
          Backfilled deliveries ({r.backfilled}): CentrePoint sent them, they never reached the relay as webhooks, and they are now recorded and handed to the
          targets
        </summary>
        <ul class="small mono">
          {r.backfilledIds.slice(0, BACKFILLED_SHOWN).map((d) => (
            <li>
              <a href={deliveryHref(id, d)}>{d}</a>
            </li>
          ))}
        </ul>
        {r.backfilled > BACKFILLED_SHOWN && (
          <p class="small">
            <a href={backfilledHref(id)}>All backfilled deliveries</a>
          </p>
        )}
      </details>
    )}
  </>
);

/** The latest registration check: problems in plain words, notes, or why it could not be read. */
const RegistrationView: FC<{ check: ReconcileSummary["registration"]; now: number }> = ({ check, now }) => {
  if (!check) return <p class="muted">Not checked yet: each reconciliation checks it first, or check it now.</p>;
  const when = (
    <span class="muted small">
      checked <Time ms={check.checkedAt} now={now} />
    </span>
  );
  if (check.error !== null)
    return (
      <Notice tone="bad">
        The registration could not be read: {check.error} {when}
      </Notice>
    );
  return (
    <>
      {check.problems.length === 0 ? (
        <Notice tone="ok">
          No problem found: {check.registration?.isDisabled ? "disabled" : "enabled"}, subscribed to {check.registration?.events.join(", ") || "no event"}.{" "}
          {when}
        </Notice>
      ) : (
        <Notice tone="bad">
          {plural(check.problems.length, "problem")} {when}
          <ul>
            {check.problems.map((p) => (
              <li>{p.message}</li>
            ))}
          </ul>
        </Notice>
      )}
      {check.registration && (
        <p class="small muted">
          CentrePoint sends to <span class="mono">{truncate(check.registration.url, 120)}</span>
          {check.expectedUrl && check.expectedUrl !== check.registration.url && (
            <>
              ; this relay expects <span class="mono">{check.expectedUrl}</span>
            </>
          )}
          .
        </p>
      )}
      {check.notes.map((n) => (
        <p class="small muted">{n}</p>
      ))}
    </>
  );
};
