import type { FC } from "hono/jsx";
import { type DeliveryProvenance, EVENT_KINDS } from "../../../providers/centrepoint/constants";
import type { ListedDelivery } from "../../service/deliveries";
import { isoToUtcInput, truncate } from "../format";
import { Badge, Layout, Notice, type PageContext, Time } from "../layout";

/** The filters of the deliveries page, as in its query string. */
export interface DeliveryFilters {
  q: string;
  source: string;
  kind: string;
  from: string | null;
  to: string | null;
  attention: boolean;
  /** "" for every delivery. */
  provenance: DeliveryProvenance | "";
}

/** Kind choices: every kind, and a glob per family. */
const KIND_OPTIONS = [...new Set(EVENT_KINDS.flatMap((k) => (k.includes(".") ? [`${k.split(".")[0]}.*`, k] : [k])))];

/** Deliveries list with filters and search. */
export const DeliveriesPage: FC<{
  page: PageContext;
  filters: DeliveryFilters;
  sourceIds: string[];
  items: ListedDelivery[];
  next: string | null;
  error: string | null;
  matches: { source: string; id: string }[];
}> = ({ page, filters, sourceIds, items, next, error, matches }) => {
  const nextHref = next === null ? null : `/admin/ui/deliveries?${queryOf(filters, next)}`;
  return (
    <Layout title="Deliveries" page={page} nav="deliveries" signedIn>
      <h1>Deliveries</h1>
      <p class="sub">Every webhook CentrePoint delivered, newest first. Open one to see its body, envelope and every attempt per target.</p>
      <section class="card" aria-label="Filters">
        <form class="filters" method="get" action="/admin/ui/deliveries" role="search">
          <div>
            <label for="q">Search</label>
            <input id="q" name="q" type="search" value={filters.q} placeholder="delivery id, upload id, tracking id, subject" aria-describedby="q-help" />
          </div>
          <div>
            <label for="source">Source</label>
            <select id="source" name="source">
              <option value="">All sources</option>
              {sourceIds.map((s) => (
                <option value={s} selected={filters.source === s}>
                  {s}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="kind">Kind</label>
            <select id="kind" name="kind">
              <option value="">All kinds</option>
              {KIND_OPTIONS.map((k) => (
                <option value={k} selected={filters.kind === k}>
                  {k}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="provenance">Arrived</label>
            <select id="provenance" name="provenance">
              <option value="">Pushed or backfilled</option>
              <option value="webhook" selected={filters.provenance === "webhook"}>
                pushed by CentrePoint
              </option>
              <option value="centrepoint-history" selected={filters.provenance === "centrepoint-history"}>
                backfilled from CentrePoint's history
              </option>
            </select>
          </div>
          <div>
            <label for="from">Received from (UTC)</label>
            <input id="from" name="from" type="datetime-local" value={isoToUtcInput(filters.from)} />
          </div>
          <div>
            <label for="to">Received before (UTC)</label>
            <input id="to" name="to" type="datetime-local" value={isoToUtcInput(filters.to)} />
          </div>
          <div class="wide">
            <label class="check">
              <input type="checkbox" name="attention" value="true" checked={filters.attention} /> Only deliveries that need attention
            </label>
            <span class="row">
              <span id="q-help" class="muted small">
                An exact delivery id opens that delivery; an upload id, tracking id, subject identifier or studies/…/subjects/… lists its deliveries.
              </span>
              <a class="button secondary" href="/admin/ui/deliveries">
                Reset
              </a>
              <button type="submit">Apply</button>
            </span>
          </div>
        </form>
      </section>
      {error && <Notice tone="bad">{error}</Notice>}
      {matches.length > 0 && (
        <Notice tone="info">
          This delivery id exists in several sources:{" "}
          {matches.map((m, i) => (
            <>
              {i > 0 && ", "}
              <a href={deliveryHref(m.source, m.id)}>{m.source}</a>
            </>
          ))}
          .
        </Notice>
      )}
      <section class="card flush" aria-labelledby="results-h">
        <div class="head">
          <h2 id="results-h">
            {filters.source || filters.kind || filters.from || filters.to || filters.attention || filters.q || filters.provenance
              ? "Matching deliveries"
              : "Latest deliveries"}
          </h2>
          <span class="muted small">{items.length === 0 ? "none" : `${items.length}${next ? "+" : ""} shown`}</span>
        </div>
        {items.length === 0 ? (
          <p class="empty">No deliveries match.</p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Received</th>
                  <th scope="col">Source</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Subject</th>
                  <th scope="col">Delivery id</th>
                  <th scope="col">Notes</th>
                </tr>
              </thead>
              <tbody>
                {items.map((d) => (
                  <tr>
                    <td class="nowrap">
                      <Time ms={d.receivedAt} now={page.now} relative={false} />
                    </td>
                    <td class="nowrap">
                      <a href={`/admin/ui/sources/${d.source}`}>{d.source}</a>
                    </td>
                    <td>
                      <code>{d.kind}</code>
                    </td>
                    <td class="small">{d.subject ?? <span class="muted">—</span>}</td>
                    <td class="mono nowrap">
                      <a href={deliveryHref(d.source, d.deliveryId)}>{truncate(d.deliveryId, 40)}</a>
                    </td>
                    <td>
                      <span class="row">
                        {d.attention && (
                          <>
                            <Badge tone="warn">attention</Badge>
                            <span class="small muted" title={d.attention}>
                              {truncate(d.attention, 60)}
                            </span>
                          </>
                        )}
                        {d.duplicateCount > 0 && <Badge tone="muted">{`+${d.duplicateCount} duplicate${d.duplicateCount === 1 ? "" : "s"}`}</Badge>}
                        {d.idDerived && <Badge tone="muted">derived id</Badge>}
                        {d.provenance === "centrepoint-history" && <Badge tone="info">backfilled</Badge>}
                      </span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {nextHref && (
          <div class="pager">
            <span />
            <a class="button secondary" href={nextHref}>
              Older deliveries →
            </a>
          </div>
        )}
      </section>
    </Layout>
  );
};

/** Link to the deliveries of a source backfilled from CentrePoint's history. */
export function backfilledHref(source: string): string {
  return `/admin/ui/deliveries?${new URLSearchParams({ source, provenance: "centrepoint-history" })}`;
}

/** Link to a delivery's page. */
export function deliveryHref(source: string, id: string): string {
  return `/admin/ui/deliveries/${encodeURIComponent(source)}/${encodeURIComponent(id)}`;
}

function queryOf(f: DeliveryFilters, cursor: string): string {
  const p = new URLSearchParams();
  if (f.q) p.set("q", f.q);
  if (f.source) p.set("source", f.source);
  if (f.kind) p.set("kind", f.kind);
  if (f.from) p.set("from", isoToUtcInput(f.from));
  if (f.to) p.set("to", isoToUtcInput(f.to));
  if (f.attention) p.set("attention", "true");
  if (f.provenance) p.set("provenance", f.provenance);
  p.set("cursor", cursor);
  return p.toString();
}
