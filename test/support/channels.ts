import { env } from "cloudflare:workers";
import { clearConfigCache } from "../../src/config/store";
import type { IssueChange, IssueSnapshot } from "../../src/alerts/types";
import { channelOutboxName } from "../../src/outbox/types";
import { freshId } from "./helpers";

/** TEST_ALERT_SIGNING_SECRET and TEST_SLACK_URL of vitest.config.ts. */
export const ALERT_SIGNING_SECRET = "whsec_C2VjcmV0LWFsZXJ0LWNoYW5uZWwta2V5LTEyMzQ1Ng==";
export const SLACK_URL = "https://hooks.slack.example/services/T0001/B0001/slackSecretPart9f8e";

/** Writes an alert channel document straight into KV and returns its id. */
export async function putChannel(doc: Record<string, unknown>, id = freshId("ch")): Promise<string> {
  await env.CONFIG.put(`alert:${id}`, JSON.stringify(doc));
  clearConfigCache();
  return id;
}

/** The outbox stub of an alert channel. */
export const channelOutbox = (id: string) => env.OUTBOX.get(env.OUTBOX.idFromName(channelOutboxName(id)));

/** An issue change as the issues engine hands it over. */
export function issueChange(overrides: Partial<IssueChange> = {}, data: Partial<IssueSnapshot> = {}): IssueChange {
  return {
    id: overrides.id ?? `chg_${crypto.randomUUID()}`,
    type: "issue.opened",
    timestamp: new Date(Date.now()).toISOString(),
    ...overrides,
    data: {
      issueId: "iss_01",
      condition: "dead_letters",
      severity: "critical",
      object: { target: "edc" },
      summary: "Target edc has 3 dead dispatches",
      firstSeenAt: "2100-01-01T00:00:00.000Z",
      lastSeenAt: "2100-01-01T00:00:00.000Z",
      count: 3,
      url: "/admin/ui/issues/iss_01",
      state: "open",
      ...data,
    },
  };
}
