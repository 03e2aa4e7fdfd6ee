import type { FC } from "hono/jsx";
import type { SourceConfig } from "../../../config/schemas";
import type { Listed } from "../../../config/store";
import type { HandshakeEntry, IntegrityReport, LedgerStats } from "../../../ledger/queries";
import type { ReconcileSummary } from "../../../reconcile/reconciler";
import { formatTime, plural } from "../format";
import { Badge, type Flash, Layout, Notice, type PageContext, Stat, Time } from "../layout";
import { describeAuth, FieldErrors } from "./parts";
import { CentrePointApiSection } from "./reconciliation";

/**
 * A source: configuration (secret names only), counts, the integrity check on request, the
 * CentrePoint API part (registration check, reconciliation; runs only from its POST buttons), recent
 * handshakes.
 */
export const SourcePage: FC<{
  page: PageContext;
  id: string;
  webhookUrl: string;
  listed: Listed<SourceConfig> | null;
  stats: LedgerStats;
  integrity: IntegrityReport | null;
  handshakes: (HandshakeEntry & { id: number })[];
  /** Older handshakes the log's bound has dropped. */
  handshakesDropped: number;
  /** Stored reconciliation state; null without a `centrepoint` block. */
  reconcile: ReconcileSummary | null;
  notice: Flash;
}> = ({ page, id, webhookUrl, listed, stats, integrity, handshakes, handshakesDropped, reconcile, notice }) => (
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

    <section class="card" aria-labelledby="integrity-h">
      <div class="head">
        <h2 id="integrity-h">Ledger integrity</h2>
        <form method="get" action={`/admin/ui/sources/${id}`}>
          <input type="hidden" name="verify" value="1" />
          <button type="submit">{integrity ? "Run the check again" : "Run integrity check"}</button>
        </form>
      </div>
      {!integrity ? (
        <p class="muted">Recomputes every body hash and every link of the hash chain, and names the first broken record.</p>
      ) : integrity.ok ? (
        <Notice tone="ok">
          Intact: {plural(integrity.checked, "record")} checked, {formatTime(page.now)}. Head hash <span class="mono small">{integrity.headHash}</span> — keep
          it somewhere else (a ticket, the EDC) to detect a rebuilt chain later.
        </Notice>
      ) : (
        <Notice tone="bad">
          Broken at record #{integrity.firstBroken?.seq} (<span class="mono">{integrity.firstBroken?.deliveryId}</span>): {integrity.firstBroken?.reason}.{" "}
          {plural(integrity.checked, "record")} before it are intact.
        </Notice>
      )}
    </section>

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
  </Layout>
);
