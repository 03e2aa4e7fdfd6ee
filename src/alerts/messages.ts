import { type AlertChannel, SEVERITIES } from "../config/alert-schema";
import { channelOutboxName, type EmailNotification, NOTIFICATION_SOURCE, type HandoffItem } from "../outbox/types";
import type { WebhookNotification } from "./notification-schema";
import type { IssueChange, IssueObject, IssueSnapshot } from "./types";

/**
 * What each type of alert channel is sent for one issue change, built once when the notification is
 * enqueued (the outbox stores it fully formed and sends it as it is, retries included), and which
 * changes a channel hears about.
 */

/** `source:<id>`, `target:<id>` or `channel:<id>`: how a channel's `objects` filter names an issue's object. */
export function objectKey(object: IssueObject): string {
  const [kind, id] = Object.entries(object)[0] ?? ["", ""];
  return `${kind}:${id}`;
}

/** An issue's link, absolute when the relay's public URL is known. */
export function absoluteUrl(url: string, publicUrl: string): string {
  return url.startsWith("/") && publicUrl !== "" ? `${publicUrl.replace(/\/+$/, "")}${url}` : url;
}

/** The webhook body, only the documented fields of the snapshot (whatever else the issues engine keeps stays there). */
export function webhookNotification(change: IssueChange, publicUrl: string): WebhookNotification {
  const d = change.data;
  return {
    type: change.type,
    timestamp: change.timestamp,
    data: {
      issueId: d.issueId,
      condition: d.condition,
      severity: d.severity,
      object: d.object,
      summary: d.summary,
      firstSeenAt: d.firstSeenAt,
      lastSeenAt: d.lastSeenAt,
      count: d.count,
      url: absoluteUrl(d.url, publicUrl),
    },
  };
}

const VERB: Record<IssueChange["type"], string> = { "issue.opened": "opened", "issue.acknowledged": "acknowledged", "issue.resolved": "resolved" };

/** `[CRITICAL] Issue opened: <summary>`: the one line every channel leads with. */
export function headline(change: IssueChange): string {
  return `[${change.data.severity.toUpperCase()}] Issue ${VERB[change.type]}: ${change.data.summary}`;
}

/** Slack mrkdwn treats &, < and > as control characters. */
const slackEscape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A short Slack Block Kit message: the headline, the facts, the link. `text` is the notification fallback. */
export function slackNotification(change: IssueChange, publicUrl: string): Record<string, unknown> {
  const d = change.data;
  const url = absoluteUrl(d.url, publicUrl);
  const facts = `${d.condition} · ${objectKey(d.object)} · seen ${d.count}× since ${d.firstSeenAt}`;
  return {
    text: headline(change),
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: `*${slackEscape(headline(change))}*` } },
      { type: "context", elements: [{ type: "mrkdwn", text: slackEscape(facts) }] },
      { type: "section", text: { type: "mrkdwn", text: `<${url.replace(/[<>|]/g, encodeURIComponent)}|Open the issue in the relay>` } },
    ],
  };
}

/** A plain-text mail: the headline as subject, the facts and the link as body. */
export function emailNotification(change: IssueChange, publicUrl: string): EmailNotification {
  const d = change.data;
  return {
    subject: headline(change),
    text: [
      headline(change),
      "",
      `Condition:  ${d.condition}`,
      `Object:     ${objectKey(d.object)}`,
      `Severity:   ${d.severity}`,
      `Seen:       ${d.count} times, first ${d.firstSeenAt}, last ${d.lastSeenAt}`,
      `State:      ${VERB[change.type]} at ${change.timestamp}`,
      "",
      absoluteUrl(d.url, publicUrl),
      "",
      `Notification ${change.id} from the CentrePoint Edge Relay.`,
    ].join("\n"),
  };
}

/** The outbox item of one change for one channel; its delivery id (`webhook-id`) is the change's id, so a repeated call enqueues nothing new. */
export function notificationItem(channel: AlertChannel, change: IssueChange, publicUrl: string): HandoffItem {
  const body =
    channel.type === "webhook"
      ? webhookNotification(change, publicUrl)
      : channel.type === "slack"
        ? slackNotification(change, publicUrl)
        : emailNotification(change, publicUrl);
  const text = JSON.stringify(body);
  const at = Date.parse(change.timestamp);
  return {
    source: NOTIFICATION_SOURCE,
    deliveryId: change.id,
    kind: change.type,
    // The ordering lane of the channel's outbox: one issue's changes go out in order.
    subject: `issues/${change.data.issueId}`,
    receivedAt: Number.isFinite(at) ? at : Date.now(),
    envelope: text,
    body: new TextEncoder().encode(text),
    headers: {},
  };
}

/**
 * Whether a channel hears about a change: enabled, the severity at least its own, the condition and
 * the object among its lists. Never about itself: a failing channel's own issue (object
 * `{channel: id}`) is not sent to it, so a broken channel cannot feed itself (other channels hear of it).
 */
export function channelWants(channelId: string, channel: AlertChannel, issue: IssueSnapshot): boolean {
  if (!channel.enabled) return false;
  const key = objectKey(issue.object);
  // Its own outbox may also be reported as a target named `alert:<id>` (where dispatches go dead): the same channel.
  if (key === `channel:${channelId}` || key === `target:${channelOutboxName(channelId)}`) return false;
  if (SEVERITIES.indexOf(issue.severity) < SEVERITIES.indexOf(channel.severity)) return false;
  if (!channel.conditions.includes("*") && !channel.conditions.includes(issue.condition)) return false;
  const kind = key.slice(0, key.indexOf(":"));
  return channel.objects.some((o) => o === "*" || o === key || o === `${kind}:*`);
}
