import type { z } from "zod";
import { err, ok, type Result } from "../lib/result";
import { type FieldError, idSchema, sourceSchema, targetSchema, toFieldErrors, type SourceConfig, type TargetConfig } from "./schemas";
import { roleConflicts } from "./secrets";

/**
 * Reads and writes the KV configuration documents. Reads are cached per isolate for
 * CONFIG_CACHE_TTL_MS; writes through the admin API clear this isolate's cache at once,
 * other isolates (and `wrangler kv key put`) see changes within that time plus KV's own
 * propagation delay (up to 60 s across locations).
 */
export const CONFIG_CACHE_TTL_MS = 5_000;

export const KINDS = { source: sourceSchema, target: targetSchema } as const;
export type ConfigKind = keyof typeof KINDS;
export type ConfigOf<K extends ConfigKind> = K extends "source" ? SourceConfig : TargetConfig;

/** What a KV document turned out to be. */
export type Loaded<T> = { state: "missing" } | { state: "invalid"; errors: FieldError[] } | { state: "valid"; config: T };

/** A listed document: valid with its config, or invalid with its errors. */
export type Listed<T> = { id: string } & ({ valid: true; config: T } | { valid: false; errors: FieldError[] });

const cache = new Map<string, { at: number; value: unknown }>();

/** The KV key of a document. */
export const configKey = (kind: ConfigKind, id: string) => `${kind}:${id}`;

/** Parses a stored or submitted document against its schema. */
export function parseConfig<K extends ConfigKind>(kind: K, raw: unknown): Result<ConfigOf<K>, FieldError[]> {
  const parsed = (KINDS[kind] as z.ZodType).safeParse(raw);
  return parsed.success ? ok(parsed.data as ConfigOf<K>) : err(toFieldErrors(parsed.error));
}

function parseText<K extends ConfigKind>(kind: K, text: string): Loaded<ConfigOf<K>> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { state: "invalid", errors: [{ path: "(document)", message: "is not valid JSON" }] };
  }
  const r = parseConfig(kind, raw);
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

/** The other kind of document: the one whose secrets must not overlap this kind's. */
const otherKind = (kind: ConfigKind): ConfigKind => (kind === "source" ? "target" : "source");

/** A parsed document whose secrets a document of the other kind also names becomes invalid, with a field error per overlap. */
async function withRoleCheck<K extends ConfigKind>(kv: KVNamespace, kind: K, loaded: Loaded<ConfigOf<K>>, maxAgeMs: number): Promise<Loaded<ConfigOf<K>>> {
  if (loaded.state !== "valid") return loaded;
  const conflicts = roleConflicts(kind, loaded.config, await parsedList(kv, otherKind(kind), maxAgeMs));
  return conflicts.length === 0 ? loaded : { state: "invalid", errors: conflicts };
}

/**
 * Loads one document, from this isolate's cache when it is younger than `maxAgeMs` (pass 0 to
 * read KV now, as the admin API does). Invalid documents are reported, never treated as absent;
 * a document naming a secret that a document of the other kind names is invalid (config/secrets.ts).
 */
export async function loadConfig<K extends ConfigKind>(kv: KVNamespace, kind: K, id: string, maxAgeMs = CONFIG_CACHE_TTL_MS): Promise<Loaded<ConfigOf<K>>> {
  const loaded = await cached(configKey(kind, id), maxAgeMs, async (): Promise<Loaded<ConfigOf<K>>> => {
    const text = await kv.get(configKey(kind, id), "text");
    return text === null ? { state: "missing" } : parseText(kind, text);
  });
  return withRoleCheck(kv, kind, loaded, maxAgeMs);
}

/**
 * Lists every document of a kind, valid and invalid alike, sorted by id; cached as `loadConfig`.
 * A document stored under a key the API could not have written (an id `idSchema` refuses) is
 * listed as invalid, with an error on `id`, and is never a source or target.
 */
export async function listConfigs<K extends ConfigKind>(kv: KVNamespace, kind: K, maxAgeMs = CONFIG_CACHE_TTL_MS): Promise<Listed<ConfigOf<K>>[]> {
  const [mine, others] = await Promise.all([parsedList(kv, kind, maxAgeMs), parsedList(kv, otherKind(kind), maxAgeMs)]);
  return mine.map((l) => {
    if (!l.valid) return l;
    const conflicts = roleConflicts(kind, l.config, others);
    return conflicts.length === 0 ? l : { id: l.id, valid: false, errors: conflicts };
  });
}

/** Every document of a kind parsed against its schema and id rule (no cross-document checks). */
function parsedList<K extends ConfigKind>(kv: KVNamespace, kind: K, maxAgeMs: number): Promise<Listed<ConfigOf<K>>[]> {
  return cached(`list:${kind}`, maxAgeMs, async () => {
    const ids: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const res = await kv.list({ prefix: `${kind}:`, cursor });
      ids.push(...res.keys.map((k) => k.name.slice(kind.length + 1)));
      if (res.list_complete) break;
      cursor = res.cursor;
    }
    const docs = await Promise.all(ids.map(async (id) => ({ id, text: await kv.get(configKey(kind, id), "text") })));
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
      const loaded = parseText(kind, text);
      out.push(
        loaded.state === "valid" ? { id, valid: true, config: loaded.config } : { id, valid: false, errors: loaded.state === "invalid" ? loaded.errors : [] },
      );
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  });
}

/** Field errors for secrets of `config` that documents of the other kind already name (checked on write). */
export async function secretRoleConflicts<K extends ConfigKind>(kv: KVNamespace, kind: K, config: ConfigOf<K>): Promise<FieldError[]> {
  return roleConflicts(kind, config, await parsedList(kv, otherKind(kind), 0));
}

/** Stores a validated document and clears this isolate's cache for it. */
export async function saveConfig<K extends ConfigKind>(kv: KVNamespace, kind: K, id: string, config: ConfigOf<K>): Promise<void> {
  await kv.put(configKey(kind, id), JSON.stringify(config));
  forgetConfig(kind, id);
}

/** Deletes a document; returns whether it existed. */
export async function deleteConfig(kv: KVNamespace, kind: ConfigKind, id: string): Promise<boolean> {
  const existed = (await kv.get(configKey(kind, id), "text")) !== null;
  await kv.delete(configKey(kind, id));
  forgetConfig(kind, id);
  return existed;
}

/** Drops cached reads of one document and of its kind's list. */
export function forgetConfig(kind: ConfigKind, id: string): void {
  cache.delete(configKey(kind, id));
  cache.delete(`list:${kind}`);
}

/** Whether a document of this kind and id exists in KV (read now, uncached): admin reads check this before touching a Durable Object. */
export async function configExists(kv: KVNamespace, kind: ConfigKind, id: string): Promise<boolean> {
  return (await kv.get(configKey(kind, id), "text")) !== null;
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
