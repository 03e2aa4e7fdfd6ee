import type { AlertChannel } from "../../config/alert-schema";
import type { FieldError, SourceConfig, TargetConfig } from "../../config/schemas";
import { idSchema } from "../../config/schemas";
import { type ConfigOf, type ConfigType, configKey, deleteConfig, loadConfig, parseConfig, saveConfig, secretRoleConflicts } from "../../config/store";
import type { Bindings } from "../../env";
import { log } from "../../lib/log";
import { err, ok, type Result } from "../../lib/result";
import { checkTargetUrl } from "../../lib/url-policy";
import { centrepointUrlErrors } from "../../providers/centrepoint/api/settings";
import { outboxOf } from "./stubs";

/**
 * Writing configuration documents, one path for the JSON API and the dashboard: the schema, the
 * id rule, the outbound URL policy (target URLs, a source's CentrePoint API URLs) and the secret-role rule, then KV, then what a save sets off
 * (an enabled target resumes its held events).
 */

/**
 * Records a change before KV is written (the route's audit entry): the document as stored before
 * (null when there was none) and after (null for a delete). It may throw to refuse the change
 * (the trail cannot record it, a reason it needs is missing); then nothing is written.
 */
export type RecordChange = (change: { before: unknown; after: unknown }) => Promise<void>;

/** Validates and stores a document; `created` when there was none. Refused documents change nothing. */
export async function saveDocument<T extends ConfigType>(
  env: Bindings,
  type: T,
  id: string,
  raw: unknown,
  via: "api" | "dashboard",
  record: RecordChange,
): Promise<Result<{ config: ConfigOf<T>; created: boolean }, FieldError[]>> {
  const checked = await validateDocument(env, type, id, raw);
  if (!checked.ok) return checked;
  const before = await storedDocument(env.CONFIG, type, id);
  const created = before === null;
  await record({ before, after: checked.value });
  await saveConfig(env.CONFIG, type, id, checked.value);
  if (type === "target" && (checked.value as TargetConfig).enabled) await outboxOf(env, id).resume();
  log("info", "config saved", { type, id, created, via });
  return ok({ config: checked.value, created });
}

/** Every rule a save applies (schema, id, URL policy, secret roles), without saving: the document as it would be stored. */
export async function validateDocument<T extends ConfigType>(env: Bindings, type: T, id: string, raw: unknown): Promise<Result<ConfigOf<T>, FieldError[]>> {
  const idOk = idSchema.safeParse(id);
  if (!idOk.success) return err([{ path: "id", message: idOk.error.issues[0]?.message ?? "is not a valid id" }]);
  const parsed = parseConfig(type, raw);
  if (!parsed.ok) return err(parsed.error);
  if (type === "target" && (parsed.value as TargetConfig).enabled) {
    // A disabled target never sends, so it can always be stored (and disabled); the policy applies once it is enabled.
    const url = checkTargetUrl((parsed.value as TargetConfig).url, env.ALLOW_HTTP_TARGETS === "true");
    if (!url.ok) return err([{ path: "url", message: url.error }]);
  }
  const channel = type === "alert" ? (parsed.value as AlertChannel) : undefined;
  if (channel?.type === "webhook" && channel.enabled) {
    const url = checkTargetUrl(channel.url, env.ALLOW_HTTP_TARGETS === "true");
    if (!url.ok) return err([{ path: "url", message: url.error }]);
  }
  const block = type === "source" ? (parsed.value as SourceConfig).centrepoint : undefined;
  if (block) {
    // The API's base URLs follow the outbound URL policy and the API host rule (checked again before every use).
    const urls = centrepointUrlErrors(block, env);
    if (urls.length > 0) return err(urls);
  }
  const conflicts = await secretRoleConflicts(env.CONFIG, type, id, parsed.value);
  if (conflicts.length > 0) return err(conflicts);
  return ok(parsed.value);
}

/** Deletes a document (recording it first); false when there was none (nothing recorded). */
export async function deleteDocument(env: Bindings, type: ConfigType, id: string, record: RecordChange): Promise<boolean> {
  const before = await storedDocument(env.CONFIG, type, id);
  if (before === null) return false;
  await record({ before, after: null });
  const existed = await deleteConfig(env.CONFIG, type, id);
  if (existed) log("info", "config deleted", { type, id });
  return existed;
}

/** The document as stored in KV (its JSON, or its text when it is not JSON), uncached; null when there is none. */
export async function storedDocument(kv: KVNamespace, type: ConfigType, id: string): Promise<unknown> {
  const text = await kv.get(configKey(type, id), "text");
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Enables or disables a target by saving its document with `enabled` set (same rules as any save); enabling resumes its held events. */
export async function setTargetEnabled(env: Bindings, target: string, enabled: boolean, record: RecordChange): Promise<Result<TargetConfig, string>> {
  const loaded = await loadConfig(env.CONFIG, "target", target, 0);
  if (loaded.state !== "valid")
    return err(`Only a valid target document can be ${enabled ? "enabled" : "disabled"}; fix it with PUT /admin/targets/${target}.`);
  const saved = await saveDocument(env, "target", target, { ...loaded.config, enabled }, "dashboard", record);
  if (!saved.ok) return err(`${saved.error.map((e) => `${e.path} ${e.message}`).join("; ")}; fix it with PUT /admin/targets/${target}.`);
  return ok(saved.value.config);
}
