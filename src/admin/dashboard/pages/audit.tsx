import type { FC } from "hono/jsx";
import type { AuditLine } from "../../../audit/format";
import type { AuditStatus } from "../../../audit/trail";
import { isoToUtcInput } from "../format";
import { Badge, type PageContext, Layout, Notice, Time } from "../layout";

/** The Audit page's filters as the form shows them (times ISO, or null). */
export interface AuditFilters {
  actor: string;
  action: string;
  object: string;
  from: string | null;
  to: string | null;
}

/** A JSON value flattened to `path → value text`, for the before/after diff. */
function flatten(value: unknown, path = "", out = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0 && path) out.set(path, "{}");
    for (const [k, v] of entries) flatten(v, path ? `${path}.${k}` : k, out);
  } else if (Array.isArray(value) && value.length > 0) {
    value.forEach((v, i) => flatten(v, `${path}.${i}`, out));
  } else out.set(path || "(document)", JSON.stringify(value));
  return out;
}

/** The fields a change touched: added, removed or changed, each with its old and new value. */
export function diffDocuments(before: unknown, after: unknown): { path: string; before: string | null; after: string | null }[] {
  const a = before === null ? new Map<string, string>() : flatten(before);
  const b = after === null ? new Map<string, string>() : flatten(after);
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  return paths.filter((p) => a.get(p) !== b.get(p)).map((p) => ({ path: p, before: a.get(p) ?? null, after: b.get(p) ?? null }));
}

const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

/** Entries as a table, newest first, each with its before/after as a readable diff. */
export const AuditEntries: FC<{ page: PageContext; items: AuditLine[] }> = ({ page, items }) =>
  items.length === 0 ? (
    <p class="muted">No entries.</p>
  ) : (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">Action</th>
            <th scope="col">Concerns</th>
            <th scope="col">Reason</th>
            <th scope="col">Change</th>
          </tr>
        </thead>
        <tbody>
          {items.map((e) => {
            const object = parse(e.object) as Record<string, string> | null;
            const changes = e.before !== null || (e.after !== null && /\.(put|delete)$/.test(e.action)) ? diffDocuments(parse(e.before), parse(e.after)) : [];
            return (
              <tr>
                <td class="mono">{e.seq}</td>
                <td>
                  <Time ms={e.at} now={page.now} />
                </td>
                <td>
                  <span class="mono">{e.actor}</span> <Badge tone="muted">{e.role}</Badge> <span class="muted small">via {e.via}</span>
                  {e.address && <div class="muted small mono">{e.address}</div>}
                </td>
                <td class="mono">{e.action}</td>
                <td class="mono small">
                  {object
                    ? Object.entries(object)
                        .map(([k, v]) => `${k} ${v}`)
                        .join(", ")
                    : "—"}
                </td>
                <td>{e.reason ?? <span class="muted">—</span>}</td>
                <td class="small">
                  {changes.length > 0 ? (
                    <ul class="mono">
                      {changes.map((ch) => (
                        <li>
                          {ch.path}: {ch.before === null ? <span class="muted">(none)</span> : <del>{ch.before}</del>}
                          {" → "}
                          {ch.after === null ? <span class="muted">(removed)</span> : <ins>{ch.after}</ins>}
                        </li>
                      ))}
                    </ul>
                  ) : e.after !== null ? (
                    <span class="mono muted">{e.after}</span>
                  ) : (
                    <span class="muted">—</span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );

/** A card of the entries concerning one source, target or delivery (shown to operators and up). */
export const AuditCard: FC<{ page: PageContext; items: AuditLine[] | null; object: string }> = ({ page, items, object }) =>
  items === null ? null : (
    <section class="card" aria-labelledby="audit-h">
      <div class="head">
        <h2 id="audit-h">Audit trail</h2>
        <a class="button secondary" href={`/admin/ui/audit?object=${encodeURIComponent(object)}`}>
          All entries
        </a>
      </div>
      <AuditEntries page={page} items={items} />
    </section>
  );

/** The Audit page: filters, the chain's state, the entries. */
export const AuditPage: FC<{
  page: PageContext;
  filters: AuditFilters;
  items: AuditLine[];
  next: string | null;
  error: string | null;
  status: AuditStatus;
}> = ({ page, filters, items, next, error, status }) => {
  const query = (cursor: string) => {
    const q = new URLSearchParams({ cursor });
    for (const k of ["actor", "action", "object"] as const) if (filters[k]) q.set(k, filters[k]);
    if (filters.from) q.set("from", isoToUtcInput(filters.from));
    if (filters.to) q.set("to", isoToUtcInput(filters.to));
    return q.toString();
  };
  const v = status.verified;
  return (
    <Layout title="Audit trail" page={page} nav="audit" signedIn>
      <h1>Audit trail</h1>
      <p class="sub">Every change, sign-in and read of a delivery body, and every automatic action, newest first. Append-only and hash-chained.</p>
      <section class="card" aria-labelledby="chain-h">
        <h2 id="chain-h">The chain</h2>
        {v?.broken ? (
          <Notice tone="bad">
            Entry {v.broken.seq} does not verify: {v.broken.reason}. Every entry from it on is suspect; compare with the R2 archive.
          </Notice>
        ) : (
          <p>
            <Badge tone="ok">verified</Badge> {status.head.seq} entries; verified through entry {v?.through.seq ?? 0}{" "}
            {v && (
              <>
                (<Time ms={v.checkedAt} now={page.now} />)
              </>
            )}
            .
          </p>
        )}
        <p class="small">
          Head <span class="mono">{status.head.hash}</span>. Archived to R2 through entry {status.archive.through.seq} in {status.archive.segments} segments
          {status.archive.lastArchivedAt !== null && (
            <>
              {" "}
              (last <Time ms={status.archive.lastArchivedAt} now={page.now} />)
            </>
          )}
          .
        </p>
        {status.archive.halted && <Notice tone="bad">Archiving stopped: {status.archive.halted}</Notice>}
      </section>
      <section class="card" aria-label="Filters">
        <form class="filters" method="get" action="/admin/ui/audit" role="search">
          <div>
            <label for="actor">Who</label>
            <input id="actor" name="actor" value={filters.actor} placeholder="alice@site.org, token:ci, system" />
          </div>
          <div>
            <label for="action">Action</label>
            <input id="action" name="action" value={filters.action} placeholder="source.put, delivery.*" />
          </div>
          <div>
            <label for="object">Concerns</label>
            <input id="object" name="object" value={filters.object} placeholder="a source, target or delivery id" />
          </div>
          <div>
            <label for="from">From (UTC)</label>
            <input id="from" name="from" type="datetime-local" value={isoToUtcInput(filters.from)} />
          </div>
          <div>
            <label for="to">To (UTC)</label>
            <input id="to" name="to" type="datetime-local" value={isoToUtcInput(filters.to)} />
          </div>
          <div>
            <button type="submit">Filter</button>
          </div>
        </form>
        <p class="small">
          <a
            href={`/admin/audit/export${filters.from || filters.to ? `?${new URLSearchParams({ ...(filters.from ? { from: filters.from } : {}), ...(filters.to ? { to: filters.to } : {}) })}` : ""}`}
          >
            Export this range as NDJSON
          </a>{" "}
          (check it with <span class="mono">npm run verify-archive</span>).
        </p>
      </section>
      {error && <Notice tone="bad">{error}</Notice>}
      <section class="card" aria-label="Entries">
        <AuditEntries page={page} items={items} />
        {next && (
          <p>
            <a class="button secondary" href={`/admin/ui/audit?${query(next)}`}>
              Older entries
            </a>
          </p>
        )}
      </section>
    </Layout>
  );
};
