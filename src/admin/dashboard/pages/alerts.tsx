import type { FC } from "hono/jsx";
import type { AlertChannel } from "../../../config/alert-schema";
import type { Listed } from "../../../config/store";
import type { OutboxHealth } from "../../../outbox/views";
import { plural, truncate } from "../format";
import { Badge, Layout, Notice, type PageContext, Time } from "../layout";
import { BreakerBadge } from "./parts";

/** One alert channel with its outbox's health (null when the outbox could not be read). */
export interface ChannelSummary {
  listed: Listed<AlertChannel>;
  health: OutboxHealth | null;
}

/** Why a channel is not delivering, or null when it is fine. Pure. */
export function channelProblem({ listed, health }: ChannelSummary): string | null {
  if (!listed.valid) return `its document is invalid (${plural(listed.errors.length, "error")})`;
  if (!listed.config.enabled) return null;
  if (!health) return "its outbox could not be read";
  if (health.counts.dead > 0) return `${plural(health.counts.dead, "notification")} could not be delivered (dead)`;
  if (health.heldBy !== null) return `holding ${plural(health.counts.held, "notification")}: ${health.heldReason ?? "configuration problem"}`;
  if (health.breaker.status !== "closed") return "its receiver keeps failing (breaker open)";
  return null;
}

/** Where a channel sends, naming secrets but never reading them. */
function destination(c: AlertChannel): string {
  if (c.type === "webhook") return `${c.url} (signed with ${c.signing.secretEnv})`;
  if (c.type === "slack") return `Slack webhook in secret ${c.urlEnv}`;
  return `${c.to.join(", ")} from ${c.from}`;
}

function filters(c: AlertChannel): string {
  const list = (xs: string[]) => (xs.includes("*") ? "all" : xs.join(", "));
  return `${c.severity} and above · conditions: ${list(c.conditions)} · objects: ${list(c.objects)}`;
}

/** `/admin/ui/alerts`: where issue notifications go, and whether each channel is getting them out. */
export const AlertsPage: FC<{ page: PageContext; channels: ChannelSummary[] }> = ({ page, channels }) => {
  const failing = channels.flatMap((s) => {
    const problem = channelProblem(s);
    return problem ? [{ id: s.listed.id, problem }] : [];
  });
  return (
    <Layout title="Alert channels" page={page} nav="alerts" signedIn>
      <h1>Alert channels</h1>
      {failing.length > 0 && (
        <Notice tone="bad">
          {failing.map((f) => (
            <p>
              Channel {f.id}: {f.problem}. Nobody is told through it until this is fixed.
            </p>
          ))}
        </Notice>
      )}
      <section class="card flush" aria-labelledby="channels-h">
        <div class="head">
          <h2 id="channels-h">Channels</h2>
          <span class="muted small">{plural(channels.length, "channel")}</span>
        </div>
        {channels.length === 0 ? (
          <p class="empty">
            No alert channels configured. Add one with <code>PUT /admin/alerts/&lt;id&gt;</code>.
          </p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Channel</th>
                  <th scope="col">State</th>
                  <th scope="col">Sends to</th>
                  <th scope="col">Hears about</th>
                  <th scope="col" class="num">
                    Pending
                  </th>
                  <th scope="col" class="num">
                    Dead
                  </th>
                  <th scope="col">Breaker</th>
                  <th scope="col">Last success</th>
                  <th scope="col">Last error</th>
                </tr>
              </thead>
              <tbody>
                {channels.map((s) => {
                  const { listed, health } = s;
                  const problem = channelProblem(s);
                  return (
                    <tr>
                      <th scope="row">
                        {listed.id} {listed.valid && <span class="muted small">{listed.config.type}</span>}
                      </th>
                      <td>
                        {problem ? (
                          <Badge tone="bad">failing</Badge>
                        ) : listed.valid && !listed.config.enabled ? (
                          <Badge tone="muted">disabled</Badge>
                        ) : (
                          <Badge tone="ok">ok</Badge>
                        )}
                      </td>
                      <td>{listed.valid ? destination(listed.config) : "—"}</td>
                      <td>{listed.valid ? filters(listed.config) : "—"}</td>
                      <td class="num">{health ? health.counts.pending + health.counts.delivering : "—"}</td>
                      <td class="num">{health ? health.counts.dead : "—"}</td>
                      <td>{health ? <BreakerBadge status={health.breaker.status} /> : "—"}</td>
                      <td>
                        <Time ms={health?.lastSuccessAt} now={page.now} />
                      </td>
                      <td>{health?.lastError ? truncate(health.lastError.message, 120) : "—"}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </Layout>
  );
};
