import type { z } from "zod";
import { err, ok, type Result } from "../lib/result";
import { type FieldError, idSchema, sourceSchema, targetSchema, toFieldErrors, type SourceConfig, type TargetConfig } from "./schemas";
import { type AlertChannel, alertChannelSchema } from "./alert-schema";
import { roleConflicts, type StoredDocuments } from "./secrets";

/**
 * Reads and writes the KV configuration documents. Reads are cached per isolate for
 * CONFIG_CACHE_TTL_MS; writes through the admin API clear this isolate's cache at once,
 * other isolates (and `wrangler kv key put`) see changes within that time plus KV's own
 * propagation delay (up to 60 s across locations).
 */
export const CONFIG_CACHE_TTL_MS = 5_000;

/** The schema of each type of document. */
export const SCHEMAS = { source: sourceSchema, target: targetSchema, alert: alertChannelSchema } as const;
export type ConfigType = keyof typeof SCHEMAS;
export type ConfigOf<K extends ConfigType> = K extends "source" ? SourceConfig : K extends "target" ? TargetConfig : AlertChannel;

/** What a KV document turned out to be. */
export type Loaded<T> = { state: "missing" } | { state: "invalid"; errors: FieldError[] } | { state: "valid"; config: T };

/** A listed document: valid with its config, or invalid with its errors. */
export type Listed<T> = { id: string } & ({ valid: true; config: T } | { valid: false; errors: FieldError[] });

const cache = new Map<string, { at: number; value: unknown }>();

/** The KV key of a document. */
export const configKey = (type: ConfigType, id: string) => `${type}:${id}`;

/** Parses a stored or submitted document against its schema. */
export function parseConfig<K extends ConfigType>(type: K, raw: unknown): Result<ConfigOf<K>, FieldError[]> {
  const parsed = (SCHEMAS[type] as z.ZodType).safeParse(raw);
  return parsed.success ? ok(parsed.data as ConfigOf<K>) : err(toFieldErrors(parsed.error));
}

function parseText<K extends ConfigType>(type: K, text: string): Loaded<ConfigOf<K>> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { state: "invalid", errors: [{ path: "(document)", message: "is not valid JSON" }] };
  }
  const r = parseConfig(type, raw);
  return r.ok ? { state: "valid", config: r.value } : { state: "invalid", errors: r.error };
}

async function cached<T>(key: string, maxAgeMs: number, load: () => Promise<T>): Promise<T> {
  const now = Date.now();
  const hit = cache.get(key);
  if (hit && now - hit.at < maxAgeMs) return hit.value as T;
  const value = await load();
  cache.set(key, { at: now, value });
  return value;
}

/**
 * The documents a document of `type` is checked against for secret roles (config/secrets.ts): a
 * source against sources (webhook vs API-client secrets), targets and alert channels; a target or
 * an alert channel against sources (targets and channels share one role).
 */
async function storedFor(kv: KVNamespace, type: ConfigType, maxAgeMs: number): Promise<StoredDocuments> {
  const [sources, targets, alerts] = await Promise.all([
    parsedList(kv, "source", maxAgeMs),
    type === "source" ? parsedList(kv, "target", maxAgeMs) : [],
    type === "source" ? parsedList(kv, "alert", maxAgeMs) : [],
  ]);
  return { sources, targets, alerts };
}

/** A parsed document naming a secret in a role another document (or itself) gives that name becomes invalid, with a field error per overlap. */
async function withRoleCheck<K extends ConfigType>(
  kv: KVNamespace,
  type: K,
  id: string,
  loaded: Loaded<ConfigOf<K>>,
  maxAgeMs: number,
): Promise<Loaded<ConfigOf<K>>> {
  if (loaded.state !== "valid") return loaded;
  const conflicts = roleConflicts(type, id, loaded.config, await storedFor(kv, type, maxAgeMs));
  return conflicts.length === 0 ? loaded : { state: "invalid", errors: conflicts };
}

/**
 * Loads one document, from this isolate's cache when it is younger than `maxAgeMs` (pass 0 to
 * read KV now, as the admin API does). Invalid documents are reported, never treated as absent;
 * a document naming a secret in a role another document gives that name is invalid (config/secrets.ts).
 */
export async function loadConfig<K extends ConfigType>(kv: KVNamespace, type: K, id: string, maxAgeMs = CONFIG_CACHE_TTL_MS): Promise<Loaded<ConfigOf<K>>> {
  const loaded = await cached(configKey(type, id), maxAgeMs, async (): Promise<Loaded<ConfigOf<K>>> => {
    const text = await kv.get(configKey(type, id), "text");
    return text === null ? { state: "missing" } : parseText(type, text);
  });
  return withRoleCheck(kv, type, id, loaded, maxAgeMs);
}

/**
 * Lists every document of a type, valid and invalid alike, sorted by id; cached as `loadConfig`.
 * A document stored under a key the API could not have written (an id `idSchema` refuses) is
 * listed as invalid, with an error on `id`, and is never a source or target.
 */
export async function listConfigs<K extends ConfigType>(kv: KVNamespace, type: K, maxAgeMs = CONFIG_CACHE_TTL_MS): Promise<Listed<ConfigOf<K>>[]> {
  const [mine, stored] = await Promise.all([parsedList(kv, type, maxAgeMs), storedFor(kv, type, maxAgeMs)]);
  return mine.map((l) => {
    if (!l.valid) return l;
    const conflicts = roleConflicts(type, l.id, l.config, stored);
    return conflicts.length === 0 ? l : { id: l.id, valid: false, errors: conflicts };
  });
}

/** Every document of a type parsed against its schema and id rule (no cross-document checks). */
function parsedList<K extends ConfigType>(kv: KVNamespace, type: K, maxAgeMs: number): Promise<Listed<ConfigOf<K>>[]> {
  return cached(`list:${type}`, maxAgeMs, async () => {
    const ids: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const res = await kv.list({ prefix: `${type}:`, cursor });
      ids.push(...res.keys.map((k) => k.name.slice(type.length + 1)));
      if (res.list_complete) break;
      cursor = res.cursor;
    }
    const docs = await Promise.all(ids.map(async (id) => ({ id, text: await kv.get(configKey(type, id), "text") })));
    const out: Listed<ConfigOf<K>>[] = [];
    for (const { id, text } of docs) {
      if (text === null) continue; // deleted between list and get
      const idOk = idSchema.safeParse(id);
      if (!idOk.success) {
        out.push({
          id,
          valid: false,
          errors: [{ path: "id", message: `${idOk.error.issues[0]?.message ?? "is not a valid id"}; re-create the document under a valid id` }],
        });
        continue;
      }
      const loaded = parseText(type, text);
      out.push(
        loaded.state === "valid" ? { id, valid: true, config: loaded.config } : { id, valid: false, errors: loaded.state === "invalid" ? loaded.errors : [] },
      );
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  });
}

/** Field errors for secrets `config` (to be stored as `type:id`) names in a role other stored documents, or itself, give them (checked on write). */
export async function secretRoleConflicts<K extends ConfigType>(kv: KVNamespace, type: K, id: string, config: ConfigOf<K>): Promise<FieldError[]> {
  return roleConflicts(type, id, config, await storedFor(kv, type, 0));
}

/** Stores a validated document and clears this isolate's cache for it. */
export async function saveConfig<K extends ConfigType>(kv: KVNamespace, type: K, id: string, config: ConfigOf<K>): Promise<void> {
  await kv.put(configKey(type, id), JSON.stringify(config));
  forgetConfig(type, id);
}

/** Deletes a document; returns whether it existed. */
export async function deleteConfig(kv: KVNamespace, type: ConfigType, id: string): Promise<boolean> {
  const existed = (await kv.get(configKey(type, id), "text")) !== null;
  await kv.delete(configKey(type, id));
  forgetConfig(type, id);
  return existed;
}

/** Drops cached reads of one document and of its type's list. */
export function forgetConfig(type: ConfigType, id: string): void {
  cache.delete(configKey(type, id));
  cache.delete(`list:${type}`);
}

/** Whether a document of this type and id exists in KV (read now, uncached): admin reads check this before touching a Durable Object. */
export async function configExists(kv: KVNamespace, type: ConfigType, id: string): Promise<boolean> {
  return (await kv.get(configKey(type, id), "text")) !== null;
}

/** Drops every cached read (tests, and after bulk changes). */
export function clearConfigCache(): void {
  cache.clear();
}

/** Reads a named Worker secret; undefined when it is not set or empty. */
export function readSecret(env: object, name: string): string | undefined {
  const value = (env as Record<string, unknown>)[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}
