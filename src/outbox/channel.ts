import { type AlertChannel } from "../config/alert-schema";
import { type TargetConfig, targetSchema } from "../config/schemas";
import { type Loaded, loadConfig, readSecret } from "../config/store";
import type { Bindings } from "../env";
import { err, ok, type Result } from "../lib/result";
import { checkTargetUrl } from "../lib/url-policy";
import { type ResolvedTarget, resolveTarget } from "./attempt";
import { CHANNEL_OUTBOX_PREFIX, type EmailNotification } from "./types";

/**
 * An alert channel's outbox (named `alert:<id>`) sends like a target's: the notification was stored
 * fully formed at enqueue (alerts/notify.ts), as a `raw` body with no headers of its own; here the
 * channel document becomes the policy (the targets' defaults: retries over three days, breaker,
 * timeout) and the destination: a signed webhook, a Slack incoming webhook (its URL read from the
 * named secret at send time, never stored), or mail through the `send_email` binding.
 */

/** Whether an outbox belongs to an alert channel rather than a target. */
export const isChannelOutbox = (targetId: string): boolean => targetId.startsWith(CHANNEL_OUTBOX_PREFIX);

/**
 * The policy of every channel: a target's defaults, the raw body, the channel's `enabled`, and
 * ordered per issue (each notification's subject is its issue): a receiver never gets an issue's
 * `resolved` before its `opened`, while other issues keep flowing.
 */
function channelPolicy(channel: AlertChannel): TargetConfig {
  return targetSchema.parse({ url: "https://alert-channel.invalid/", format: "raw", enabled: channel.enabled, concurrency: 1, ordered: true });
}

/** The channel document of an alert outbox, as the outbox's policy, with the channel itself. */
export async function loadChannel(env: Pick<Bindings, "CONFIG">, targetId: string): Promise<Loaded<TargetConfig> & { channel?: AlertChannel }> {
  const loaded = await loadConfig(env.CONFIG, "alert", targetId.slice(CHANNEL_OUTBOX_PREFIX.length));
  if (loaded.state !== "valid") return loaded;
  return { state: "valid", config: channelPolicy(loaded.config), channel: loaded.config };
}

/** A channel's destination with its secrets read, or why it cannot be sent to (a `config` failure that names no secret value). */
export function resolveChannel(channel: AlertChannel, env: Bindings, allowHttp: boolean, targetId: string): Result<ResolvedTarget, string> {
  const policy = channelPolicy(channel);
  if (channel.type === "webhook") return resolveTarget({ ...policy, url: channel.url, signing: channel.signing }, env, allowHttp, targetId);
  if (channel.type === "slack") {
    const url = readSecret(env, channel.urlEnv);
    if (url === undefined) return err(`secret ${channel.urlEnv} (Slack webhook URL) is not set`);
    // The URL is the credential: the policy's reason is given, the URL never.
    const allowed = checkTargetUrl(url, allowHttp);
    if (!allowed.ok) return err(`the Slack webhook URL in ${channel.urlEnv} ${allowed.error}`);
    const resolved = resolveTarget({ ...policy, url }, env, allowHttp, targetId);
    return resolved.ok ? ok({ ...resolved.value, secrets: [...resolved.value.secrets, url, new URL(url).pathname] }) : resolved;
  }
  if (!env.SEND_EMAIL) return err("the send_email binding SEND_EMAIL is not configured (wrangler.toml [[send_email]])");
  const resolved = resolveTarget(policy, env, allowHttp, targetId);
  if (!resolved.ok) return resolved;
  return ok({ ...resolved.value, url: `mailto:${channel.to.join(",")}`, send: emailSender(env.SEND_EMAIL, channel) });
}

/**
 * A fetch-shaped sender over `send_email`: the stored body is an EmailNotification; a message the
 * binding accepts answers 202 with its message id, a refusal throws (a failed attempt, retried).
 */
function emailSender(binding: SendEmail, channel: Extract<AlertChannel, { type: "email" }>): typeof fetch {
  return async (_input, init) => {
    const body = new TextDecoder().decode(init?.body as Uint8Array);
    const mail = JSON.parse(body) as EmailNotification;
    const sent = await binding.send({
      from: channel.from,
      to: channel.to,
      subject: mail.subject,
      text: mail.text,
    });
    return new Response(JSON.stringify({ messageId: sent.messageId }), { status: 202, headers: { "content-type": "application/json" } });
  };
}
