import type { TrendPoint } from "../../../lib/trends";
import { SourceCharts } from "../charts";
import { AuditCard } from "./audit";
import type { AuditLine } from "../../../audit/format";
import type { FC } from "hono/jsx";
import type { SourceConfig } from "../../../config/schemas";
import type { Listed } from "../../../config/store";
import type { HandshakeEntry, IntegrityStatus, LedgerLifecycle, LedgerStats } from "../../../ledger/queries";
import type { ReconcileSummary } from "../../../reconcile/reconciler";
import { formatBytes, formatTime, plural } from "../format";
import { Badge, can, type Flash, Layout, Notice, type PageContext, PostForm, Stat, Time } from "../layout";
import { describeAuth, FieldErrors } from "./parts";
import { CentrePointApiSection } from "./reconciliation";

/**
 * A source: configuration (secret names only), counts, integrity (stored report, progress, full
 * re-verification on request), archive and retention, the CentrePoint API part (registration check,
 * reconciliation; runs only from its POST buttons), recent handshakes.
 */
export const SourcePage: FC<{
  page: PageContext;
  id: string;
  webhookUrl: string;
  listed: Listed<SourceConfig> | null;
  stats: LedgerStats;
  lifecycle: LedgerLifecycle;
  handshakes: (HandshakeEntry & { id: number })[];
  /** Older handshakes the log's bound has dropped. */
  handshakesDropped: number;
  /** Stored reconciliation state; null without a `centrepoint` block. */
  reconcile: ReconcileSummary | null;
  notice: Flash;
  /** The newest audit entries concerning the source; null when the caller may not read the trail. */
  trail?: AuditLine[] | null;
  /** Hourly trends of the last 24 hours and 7 days (charts). */
  trends?: { day: TrendPoint[]; week: TrendPoint[] } | null;
}> = ({ page, id, webhookUrl, listed, stats, lifecycle, handshakes, handshakesDropped, reconcile, notice, trail = null, trends = null }) => (
  <Layout title={`Source ${id}`} page={page} nav="overview" signedIn>
    <p class="small">
      <a href="/admin/">← Overview</a>
    </p>
    <div class="head">
      <div>
        <h1>
          Source {id}{" "}
          {!listed ? (
            <Badge tone="bad">no document</Badge>
          ) : !listed.valid ? (
            <Badge tone="bad">invalid document</Badge>
          ) : listed.config.enabled ? (
            <Badge tone="ok">enabled</Badge>
          ) : (
            <Badge tone="muted">disabled</Badge>
          )}
        </h1>
        <p class="sub">
          Webhook URL for the CentrePoint portal: <span class="mono">{webhookUrl}</span>
        </p>
      </div>
      <a class="button secondary" href={`/admin/ui/deliveries?source=${id}`}>
        Deliveries of {id}
      </a>
    </div>
    {notice && <Notice tone={notice.tone}>{notice.text}</Notice>}
    {listed && !listed.valid && (
      <Notice tone="bad">
        The source document is invalid; CentrePoint gets 503 until it is fixed:
        <FieldErrors errors={listed.errors} />
      </Notice>
    )}

    <div class="grid">
      <Stat value={stats.deliveries} label="deliveries" />
      <Stat value={stats.duplicates} label="duplicate copies" />
      <Stat
        value={stats.attention > 0 ? <a href={`/admin/ui/deliveries?source=${id}&attention=true`}>{stats.attention}</a> : 0}
        label="need attention"
        tone={stats.attention > 0 ? "warn" : undefined}
      />
      <Stat value={stats.pendingHandoffs} label="pending hand-offs" />
      <Stat value={stats.handshakes} label="handshakes" />
      <Stat value={<Time ms={stats.lastReceivedAt} now={page.now} />} label="last received" />
    </div>
    {trends && (
      <section class="card" aria-labelledby="trends-h">
        <h2 id="trends-h">Trends</h2>
        <SourceCharts day={trends.day} week={trends.week} />
      </section>
    )}

    <IntegritySection id={id} page={page} integrity={lifecycle.integrity} />
    <ArchiveSection lifecycle={lifecycle} retention={listed?.valid ? listed.config.retention : undefined} />

    <CentrePointApiSection page={page} id={id} block={listed?.valid ? listed.config.centrepoint : undefined} summary={reconcile} />

    {listed?.valid && (
      <section class="card" aria-labelledby="config-h">
        <h2 id="config-h">Configuration</h2>
        <dl class="kv">
          <dt>Provider</dt>
          <dd>{listed.config.provider}</dd>
          {listed.config.description && (
            <>
              <dt>Description</dt>
              <dd>{listed.config.description}</dd>
            </>
          )}
          <dt>Authentication</dt>
          <dd>{describeAuth(listed.config.auth)}</dd>
          <dt>Allowed addresses</dt>
          <dd class="mono">{listed.config.allowedIps.map((ip) => (ip === "actigraph" ? "actigraph (published CentrePoint list)" : ip)).join(", ")}</dd>
        </dl>
      </section>
    )}

    <section class="card flush" aria-labelledby="hs-h">
      <div class="head">
        <h2 id="hs-h">Recent handshakes</h2>
        <span class="muted small">
          validation requests, newest first
          {handshakesDropped > 0 &&
            `; ${handshakesDropped} older ${handshakesDropped === 1 ? "one was" : "ones were"} dropped (the log keeps the newest 10,000)`}
        </span>
      </div>
      {handshakes.length === 0 ? (
        <p class="empty">No validation handshakes yet.</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Received</th>
                <th scope="col">From</th>
                <th scope="col">Webhook id</th>
                <th scope="col">Authenticated</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {handshakes.map((h) => (
                <tr>
                  <td>{formatTime(h.receivedAt)}</td>
                  <td class="mono">{h.sourceIp ?? "—"}</td>
                  <td class="mono">{h.webhookId ?? "—"}</td>
                  <td>{h.authenticated ? <Badge tone="ok">yes</Badge> : <Badge tone="muted">no</Badge>}</td>
                  <td>{h.outcome === "echoed" ? <Badge tone="ok">echoed</Badge> : <Badge tone="bad">{h.outcome}</Badge>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
    <AuditCard page={page} items={trail} object={`source:${id}`} />
  </Layout>
);

/** The stored report, the run under way and the button that starts a full re-verification (a background job, never a long request). */
const IntegritySection: FC<{ id: string; page: PageContext; integrity: IntegrityStatus }> = ({ id, page, integrity }) => {
  const { report, running, head, verifiedThrough } = integrity;
  return (
    <section class="card" aria-labelledby="integrity-h">
      <div class="head">
        <h2 id="integrity-h">Ledger integrity</h2>
        {running?.mode !== "full" && can(page, "operator") && (
          <PostForm action={`/admin/ui/sources/${id}/verify`} csrf={page.csrf} label="Re-verify the whole chain" describedBy="integrity-help" />
        )}
      </div>
      <p id="integrity-help" class="muted small">
        A daily check verifies the records added since the last one (from a stored checkpoint); a full re-verification recomputes every body hash and every link
        from the start, in small slices between deliveries, and names the first broken record.
      </p>
      {running && (
        <Notice tone="info">
          {running.mode === "full" ? "Full re-verification" : "Incremental check"} under way: at record #{running.through} of {running.upTo} (
          {plural(running.checked, "record")} verified so far, started {formatTime(running.startedAt)}). Reload the page to follow it.
        </Notice>
      )}
      {!report ? (
        !running && <p class="muted">No check has finished yet.</p>
      ) : report.ok ? (
        <Notice tone="ok">
          Intact: {plural(report.checked, "record")} checked ({report.mode === "full" ? "full re-verification" : "incremental, from the checkpoint"},{" "}
          {formatTime(report.checkedAt)}); the chain is verified through record #{verifiedThrough}
          {head > verifiedThrough && `, ${plural(head - verifiedThrough, "newer record")} not yet`}. Head hash <span class="mono small">{report.headHash}</span>{" "}
          — keep it somewhere else (a ticket, the EDC) to detect a rebuilt chain later.
          {report.prunedBodies > 0 &&
            ` ${plural(report.prunedBodies, "record")} had their body pruned: their links were verified, their bodies are in the archive.`}
        </Notice>
      ) : (
        <Notice tone="bad">
          Broken at record #{report.firstBroken?.seq} (<span class="mono">{report.firstBroken?.deliveryId}</span>): {report.firstBroken?.reason}. The records
          before it are intact ({report.mode === "full" ? "full re-verification" : "incremental check"}, {formatTime(report.checkedAt)}).
        </Notice>
      )}
    </section>
  );
};

/** Archive to R2 and retention: how far each got, what was pruned and when, and why either stopped. */
const ArchiveSection: FC<{ lifecycle: LedgerLifecycle; retention: SourceConfig["retention"] }> = ({ lifecycle, retention }) => {
  const { archive, retention: pruned, head } = lifecycle;
  return (
    <section class="card" aria-labelledby="archive-h">
      <h2 id="archive-h">Archive and retention</h2>
      {archive.halted && <Notice tone="bad">Archiving is halted: {archive.halted}. Nothing in R2 is overwritten; it is tried again every 6 hours.</Notice>}
      {pruned.error && <Notice tone="bad">Retention stopped: {pruned.error}.</Notice>}
      <dl class="kv">
        <dt>Archived to R2</dt>
        <dd>
          {archive.archivedThrough === 0
            ? "nothing yet"
            : `records 1–${archive.archivedThrough} in ${plural(archive.segments, "segment")} (${formatBytes(archive.bytes)}), last ${formatTime(archive.lastArchivedAt)}`}
          {head > archive.archivedThrough && `; ${plural(head - archive.archivedThrough, "record")} waiting for their segment to close`}
        </dd>
        <dt>Retention</dt>
        <dd>
          {!retention || (retention.bodyDays === undefined && retention.recordDays === undefined)
            ? "keep everything (no retention configured)"
            : [
                retention.bodyDays !== undefined && `bodies kept ${plural(retention.bodyDays, "day")}`,
                retention.recordDays !== undefined && `records kept ${plural(retention.recordDays, "day")}`,
              ]
                .filter(Boolean)
                .join(", ") + " after receipt, pruned only once archived"}
        </dd>
        <dt>Pruned</dt>
        <dd>
          {pruned.prunedBodies + pruned.prunedRecords === 0
            ? "nothing yet"
            : `${plural(pruned.prunedBodies, "body", "bodies")} (through record #${pruned.bodiesPrunedThrough}; their digests stay in the chain), ${plural(pruned.prunedRecords, "whole record")}${
                pruned.recordsPrunedThrough > 0 ? ` (records 1–${pruned.recordsPrunedThrough}, kept in the archive)` : ""
              }; last ${formatTime(pruned.lastPrunedAt)}`}
        </dd>
        {pruned.heldBackNote && (
          <>
            <dt>Held back</dt>
            <dd>{pruned.heldBackNote}</dd>
          </>
        )}
      </dl>
    </section>
  );
};
