import type { FC } from "hono/jsx";
import type { IssueView } from "../../../alerts/types";
import { objectKey } from "../../../alerts/types";
import { SEVERITIES, type Severity } from "../../../config/alerting";
import { plural } from "../format";
import { Badge, can, type Flash, Layout, Notice, type PageContext, PostForm, type Tone, Time } from "../layout";

/** Tone of each severity. */
export const SEVERITY_TONE: Record<Severity, Tone> = { critical: "bad", warning: "warn", info: "info" };
const STATE_TONE: Record<IssueView["state"], Tone> = { open: "bad", acknowledged: "info", resolved: "ok" };

/** The filters of the Issues page, as parsed from its query. */
export interface IssueFilters {
  state: "" | IssueView["state"];
  severity: "" | Severity;
  object: string;
}

/** An issue's object as "target edc" / "source study-42" / "channel ops". */
export function describeObject(object: IssueView["object"]): string {
  return objectKey(object).replace(":", " ");
}

/** The dashboard page of an issue's object (its `url` may be absolute, on RELAY_PUBLIC_URL). */
export function issueObjectHref(issue: IssueView): string {
  return "source" in issue.object
    ? `/admin/ui/sources/${issue.object.source}`
    : "target" in issue.object
      ? `/admin/ui/targets/${issue.object.target}`
      : `/admin/ui/issues?object=${encodeURIComponent(objectKey(issue.object))}`;
}

/** Issues: one row per issue (condition on an object), with acknowledge and resolve forms; filters by state, severity and object. */
export const IssuesPage: FC<{ page: PageContext; issues: IssueView[]; filters: IssueFilters; notice: Flash }> = ({ page, issues, filters, notice }) => {
  const unresolved = issues.filter((i) => i.state !== "resolved").length;
  return (
    <Layout title="Issues" page={page} nav="issues" signedIn>
      <h1>Issues</h1>
      <p class="sub">
        One issue per condition and object. Issues resolve themselves when their condition clears; one that returns within 5 minutes reopens. See
        docs/alerting.md for the conditions and their thresholds.
      </p>
      {notice && <Notice tone={notice.tone}>{notice.text}</Notice>}
      <section class="card">
        <form class="filters" method="get" action="/admin/ui/issues" role="search">
          <div>
            <label for="state">State</label>
            <select id="state" name="state">
              <option value="">Any state</option>
              {(["open", "acknowledged", "resolved"] as const).map((s) => (
                <option value={s} selected={filters.state === s}>
                  {s}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="severity">Severity</label>
            <select id="severity" name="severity">
              <option value="">Any severity</option>
              {SEVERITIES.map((s) => (
                <option value={s} selected={filters.severity === s}>
                  {s}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="object">Object</label>
            <input id="object" name="object" value={filters.object} placeholder="target:edc or source:study-42" />
          </div>
          <div>
            <button type="submit">Filter</button>
          </div>
        </form>
      </section>
      <section class="card flush" aria-labelledby="issues-list-h">
        <div class="head">
          <h2 id="issues-list-h">{plural(issues.length, "issue")}</h2>
          <span class="muted small">{unresolved} unresolved</span>
        </div>
        {issues.length === 0 ? (
          <p class="empty" role="status">
            No issues match.
          </p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Severity</th>
                  <th scope="col">Issue</th>
                  <th scope="col">Object</th>
                  <th scope="col">State</th>
                  <th scope="col">First seen</th>
                  <th scope="col">Last seen</th>
                  <th scope="col">Count</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {issues.map((i) => (
                  <tr id={i.issueId}>
                    <td>
                      <Badge tone={SEVERITY_TONE[i.severity]}>{i.severity}</Badge>
                    </td>
                    <td>
                      <strong class="mono">{i.condition}</strong>
                      <div class="small">{i.summary}</div>
                      <div class="muted small mono">{i.issueId}</div>
                    </td>
                    <td>
                      <a href={issueObjectHref(i)}>{describeObject(i.object)}</a>
                    </td>
                    <td>
                      <Badge tone={STATE_TONE[i.state]}>{i.state}</Badge>
                      {i.acknowledgedBy && <div class="small">by {i.acknowledgedBy}</div>}
                      {i.note && <div class="small muted">“{i.note}”</div>}
                      {i.resolvedBy && <div class="small">resolved by {i.resolvedBy}</div>}
                    </td>
                    <td>
                      <Time ms={Date.parse(i.firstSeenAt)} now={page.now} />
                    </td>
                    <td>
                      <Time ms={Date.parse(i.lastSeenAt)} now={page.now} />
                    </td>
                    <td>{i.count}</td>
                    <td>
                      {i.state === "open" && can(page, "operator") && (
                        <form class="inline" method="post" action={`/admin/ui/issues/${i.issueId}/acknowledge`}>
                          {page.csrf !== null && <input type="hidden" name="_csrf" value={page.csrf} />}
                          <label class="small" for={`note-${i.issueId}`}>
                            Note
                          </label>
                          <input id={`note-${i.issueId}`} name="note" maxlength={1000} placeholder="what is being done" />
                          <button type="submit" class="secondary">
                            Acknowledge
                          </button>
                        </form>
                      )}
                      {i.state !== "resolved" && (
                        <PostForm action={`/admin/ui/issues/${i.issueId}/resolve`} csrf={page.csrf} label="Resolve" variant="secondary" />
                      )}
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
