import { isValidId } from "../../config/schemas";
import { listConfigs } from "../../config/store";
import type { Bindings } from "../../env";
import type { Family } from "../../lib/prometheus";
import { channelOutboxName } from "../../outbox/types";
import { outboxOf } from "../service/stubs";

/**
 * Metrics of the alert channels' outboxes (`alert:<id>`): what a channel still owes and what it
 * could not deliver, so a silent notification path is itself alertable (docs/prometheus/relay-rules.yml).
 */
export async function alertFamilies(env: Bindings): Promise<Family[]> {
  const channels = (await listConfigs(env.CONFIG, "alert")).filter((c) => isValidId(c.id));
  const health = await Promise.all(channels.map(async (c) => ({ id: c.id, valid: c.valid, h: await outboxOf(env, channelOutboxName(c.id)).health() })));
  const gauge = (name: string, help: string): Family => ({ name, help, type: "gauge", samples: [] });
  const pending = gauge("relay_alert_channel_pending", "Notifications waiting to be sent (pending or in flight), by alert channel.");
  const dead = gauge("relay_alert_channel_dead", "Notifications whose attempts are exhausted, by alert channel: nobody was told.");
  const held = gauge(
    "relay_alert_channel_held",
    "Notifications held because the channel is disabled or misconfigured (e.g. its secret is not set), by alert channel.",
  );
  const breaker = gauge("relay_alert_channel_breaker_open", "1 when the alert channel's circuit breaker is open or probing.");
  const invalid = gauge("relay_alert_channel_invalid", "1 when the alert channel's stored document fails validation.");
  for (const { id, valid, h } of health) {
    pending.samples.push({ labels: { channel: id }, value: h.counts.pending + h.counts.delivering });
    dead.samples.push({ labels: { channel: id }, value: h.counts.dead });
    held.samples.push({ labels: { channel: id }, value: h.counts.held });
    breaker.samples.push({ labels: { channel: id }, value: h.breaker.status === "closed" ? 0 : 1 });
    invalid.samples.push({ labels: { channel: id }, value: valid ? 0 : 1 });
  }
  return [pending, dead, held, breaker, invalid];
}
