import type { TargetConfig } from "../../config/schemas";
import { listConfigs } from "../../config/store";
import type { Bindings } from "../../env";
import { err, ok, type Result } from "../../lib/result";
import { forwardableHeaders } from "../../ledger/handoff";
import { prepareRequest, redactSecrets, resolveTarget, STANDARD_WEBHOOKS_HEADER } from "../../outbox/attempt";
import { targetWants } from "../../config/match";
import type { HandoffItem } from "../../outbox/types";
import { HEADER } from "../../providers/centrepoint/constants";
import { ledgerOf, outboxOf } from "./stubs";

/**
 * Previews (docs/transforms.md): a recorded delivery as a target would get it, through its filter
 * and transform, without sending. Secret values never appear: `$secret(NAME)` gives `[secret NAME]`
 * instead of the value, the auth header and signatures are `[redacted]`, and every form of the
 * target's secrets is redacted from what is left.
 */

/** What a preview shows. `request` is null when the filter does not want the delivery or an expression failed (`error`). */
export interface Preview {
  wanted: boolean;
  request: { method: string; url: string; headers: Record<string, string>; body: string } | null;
  error: string | null;
}

/** A delivery's payload as the target would get it: the target's own dispatch (enrichment included) or the ledger's record. */
async function payloadOf(env: Bindings, targetId: string, source: string, deliveryId: string): Promise<Result<HandoffItem, string>> {
  const dispatched = await outboxOf(env, targetId).payload(source, deliveryId);
  if (dispatched) return ok(dispatched);
  const d = await ledgerOf(env, source).get(deliveryId);
  if (!d) return err(`Source "${source}" has no delivery ${deliveryId}.`);
  if (d.bodyPrunedAt !== null) return err(`The body of delivery ${deliveryId} was pruned by retention; replay it from the archive to preview it.`);
  return ok({
    source,
    deliveryId,
    kind: d.kind,
    subject: d.subject,
    receivedAt: d.receivedAt,
    envelope: d.envelope,
    body: d.body,
    headers: forwardableHeaders(d.headers),
  });
}

/** The preview of one payload through a target's document (saved or not). */
export async function previewItem(env: Bindings, targetId: string, config: TargetConfig, item: HandoffItem): Promise<Preview> {
  const resolved = resolveTarget(config, env, env.ALLOW_HTTP_TARGETS === "true", targetId);
  if (!resolved.ok) return { wanted: true, request: null, error: resolved.error };
  const target = resolved.value;
  const placeholders = Object.fromEntries(Object.keys(target.transformSecrets).map((name) => [name, `[secret ${name}]`]));
  const prepared = await prepareRequest(item, { ...target, transformSecrets: placeholders }, Date.now());
  if (prepared.kind === "not_wanted") return { wanted: false, request: null, error: null };
  if (prepared.kind === "transform") return { wanted: true, request: null, error: prepared.error };
  const { request } = prepared;
  const hidden = new Set([target.auth?.[0], STANDARD_WEBHOOKS_HEADER.signature, HEADER.signature.toLowerCase()]);
  const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, hidden.has(k) ? "[redacted]" : redactSecrets(v, target.secrets)]));
  const body = redactSecrets(new TextDecoder().decode(request.body), target.secrets);
  return { wanted: true, request: { method: request.method ?? "POST", url: request.url, headers, body }, error: null };
}

/** The preview of one recorded delivery through a target's saved document. */
export async function previewDelivery(
  env: Bindings,
  targetId: string,
  config: TargetConfig,
  source: string,
  deliveryId: string,
): Promise<Result<Preview, string>> {
  const item = await payloadOf(env, targetId, source, deliveryId);
  if (!item.ok) return item;
  return ok(await previewItem(env, targetId, config, item.value));
}

/** Sources a dry run looks at, at most. */
const DRY_RUN_SOURCES = 20;
/** Recent deliveries of a source a dry run reads to find the latest the target wants by kind. */
const DRY_RUN_SCAN = 50;

/** One preview of a dry run: the latest delivery of a source that the target's events and sources match. */
export type DryRunPreview = { source: string; deliveryId: string } & Preview;

/** Previews a document (not saved) against the latest matching delivery of each source it takes events from. */
export async function dryRun(env: Bindings, targetId: string, config: TargetConfig): Promise<DryRunPreview[]> {
  const sources = (await listConfigs(env.CONFIG, "source", 0))
    .filter((s) => s.valid && (config.sources.includes("*") || config.sources.includes(s.id)))
    .slice(0, DRY_RUN_SOURCES);
  const out: DryRunPreview[] = [];
  for (const s of sources) {
    const recent = await ledgerOf(env, s.id).list({ limit: DRY_RUN_SCAN });
    const latest = recent.find((d) => targetWants(config, s.id, d.kind) && d.bodyPrunedAt === null);
    if (!latest) continue;
    const preview = await previewDelivery(env, targetId, config, s.id, latest.deliveryId);
    out.push({ source: s.id, deliveryId: latest.deliveryId, ...(preview.ok ? preview.value : { wanted: true, request: null, error: preview.error }) });
  }
  return out;
}
