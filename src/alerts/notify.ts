import { listConfigs } from "../config/store";
import type { Bindings } from "../env";
import { log } from "../lib/log";
import { channelOutboxName, type HandoffItem } from "../outbox/types";
import { channelWants, notificationItem } from "./messages";
import type { IssueChange } from "./types";

/**
 * Hands one issue change to every alert channel that wants it (alerts/messages.ts `channelWants`):
 * one notification per change per channel, enqueued in the channel's own outbox (`alert:<id>`) with
 * the change's id as its idempotency key, then sent, retried and dead-lettered by the outbox like any
 * dispatch. Safe to call again with the same change (nothing new is enqueued). Throws when a
 * channel's outbox could not take it, after trying every channel: the caller calls again.
 * Invalid channel documents are skipped (the listing reports them).
 */
export async function notifyIssueChange(env: Pick<Bindings, "CONFIG" | "OUTBOX" | "RELAY_PUBLIC_URL">, change: IssueChange): Promise<{ channels: string[] }> {
  const channels = (await listConfigs(env.CONFIG, "alert")).flatMap((c) => (c.valid && channelWants(c.id, c.config, change.data) ? [c] : []));
  const publicUrl = env.RELAY_PUBLIC_URL ?? "";
  const results = await Promise.allSettled(channels.map((c) => enqueueNotification(env, c.id, notificationItem(c.config, change, publicUrl))));
  const failed = results.flatMap((r, i) => (r.status === "rejected" ? [channels[i]!.id] : []));
  if (failed.length > 0) {
    log("error", "notification not enqueued", { change: change.id, channels: failed });
    throw new Error(`notification ${change.id} could not be enqueued for ${failed.join(", ")}`);
  }
  return { channels: channels.map((c) => c.id) };
}

/** Enqueues one notification in a channel's outbox (also the test notification's path). */
export async function enqueueNotification(
  env: Pick<Bindings, "OUTBOX">,
  channelId: string,
  item: HandoffItem,
): Promise<{ inserted: number; duplicates: number }> {
  const name = channelOutboxName(channelId);
  return env.OUTBOX.get(env.OUTBOX.idFromName(name)).acceptHandoff(name, [item]);
}
