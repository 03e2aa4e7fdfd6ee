import type { z } from "zod";
import { err, ok, type Result } from "../lib/result";
import { type FieldError, sourceSchema, targetSchema, toFieldErrors, type SourceConfig, type TargetConfig } from "./schemas";

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

/**
 * Loads one document, from this isolate's cache when it is younger than `maxAgeMs` (pass 0 to
 * read KV now, as the admin API does). Invalid documents are reported, never treated as absent.
 */
export function loadConfig<K extends ConfigKind>(kv: KVNamespace, kind: K, id: string, maxAgeMs = CONFIG_CACHE_TTL_MS): Promise<Loaded<ConfigOf<K>>> {
  return cached(configKey(kind, id), maxAgeMs, async () => {
    const text = await kv.get(configKey(kind, id), "text");
    return text === null ? { state: "missing" } : parseText(kind, text);
  });
}

/** Lists every document of a kind, valid and invalid alike, sorted by id; cached as `loadConfig`. */
export function listConfigs<K extends ConfigKind>(kv: KVNamespace, kind: K, maxAgeMs = CONFIG_CACHE_TTL_MS): Promise<Listed<ConfigOf<K>>[]> {
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
      const loaded = parseText(kind, text);
      out.push(
        loaded.state === "valid" ? { id, valid: true, config: loaded.config } : { id, valid: false, errors: loaded.state === "invalid" ? loaded.errors : [] },
      );
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  });
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

/** Drops every cached read (tests, and after bulk changes). */
export function clearConfigCache(): void {
  cache.clear();
}

/** Reads a named Worker secret; undefined when it is not set or empty. */
export function readSecret(env: object, name: string): string | undefined {
  const value = (env as Record<string, unknown>)[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}
