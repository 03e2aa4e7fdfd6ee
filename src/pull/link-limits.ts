/**
 * What keeps a relay file link from being an amplifier (docs/pull.md, "Durable links"): request
 * limits per link and per client address, and the reuse of CentrePoint's download URL of a file
 * until shortly before it expires. Pure: the state is a Map the Puller keeps in memory (never in
 * storage, never in KV: a download URL is a bearer credential of CentrePoint's, and the counters are
 * worth nothing after a restart), the clock is passed in.
 */
import { addressGroup } from "../lib/ip";

/** Requests a minute one link (a file, for one target) may make; a refused request is not counted. */
export const LINK_REQUESTS_PER_MINUTE = 10;
/** Requests a minute one client address (IPv6: its /64) may make to one source's links. */
export const ADDRESS_REQUESTS_PER_MINUTE = 60;
/** The limits' window: fixed minutes starting at each key's first request. */
export const LIMIT_WINDOW_MS = 60_000;
/** Keys kept at most; past it, ended windows go first, then the oldest. */
export const MAX_LIMIT_KEYS = 10_000;

/** CentrePoint's download URLs are valid about two minutes; one is reused for at most this long after it was given... */
export const DOWNLOAD_URL_LIFETIME_MS = 120_000;
/** ...and never within this margin of its own expiry (a client that starts a download late still starts it in time). */
export const DOWNLOAD_URL_MARGIN_MS = 20_000;
/** Download URLs kept at most (one per file). */
export const MAX_CACHED_URLS = 1_000;

/** One key's window. */
export interface LimitWindow {
  start: number;
  count: number;
}

/** The key of a client address: an IPv6 address by its /64 (one subscriber's network), anything else as given. */
export function addressKey(ip: string | null): string {
  return `address ${addressGroup(ip ?? undefined)}`;
}

/** The key of a link: its target and file. */
export function linkKey(target: string, fileId: string): string {
  return `link ${JSON.stringify([target, fileId])}`;
}

/**
 * Counts one request against every `limits` key at `now`, or refuses it when any key has used its
 * limit in its current window, with the wait until that window ends (the longest, when several).
 * A refused request counts against none.
 */
export function admitRequest(
  windows: Map<string, LimitWindow>,
  limits: readonly { key: string; limit: number }[],
  now: number,
): { ok: true } | { ok: false; retryAfterMs: number; key: string } {
  let refusal: { ok: false; retryAfterMs: number; key: string } | null = null;
  for (const { key, limit } of limits) {
    const w = windows.get(key);
    if (w && now - w.start < LIMIT_WINDOW_MS && w.count >= limit) {
      const wait = w.start + LIMIT_WINDOW_MS - now;
      if (!refusal || wait > refusal.retryAfterMs) refusal = { ok: false, retryAfterMs: wait, key };
    }
  }
  if (refusal) return refusal;
  for (const { key } of limits) {
    const w = windows.get(key);
    if (w && now - w.start < LIMIT_WINDOW_MS) w.count++;
    else {
      windows.delete(key); // re-inserted last: the Map stays ordered by window start
      windows.set(key, { start: now, count: 1 });
    }
  }
  bound(windows, MAX_LIMIT_KEYS, (w) => now - w.start >= LIMIT_WINDOW_MS);
  return { ok: true };
}

/** A download URL and until when it may be handed out again (epoch ms). Secret-like: memory only. */
export interface CachedUrl {
  url: string;
  reuseUntil: number;
}

/** Until when a download URL given at `now` may be reused: its expiry (or two minutes when none is given, at most two minutes) less the margin. */
export function reuseUntil(now: number, expiresAt: string | null): number {
  const given = expiresAt === null ? NaN : Date.parse(expiresAt);
  const expiry = Math.min(now + DOWNLOAD_URL_LIFETIME_MS, Number.isFinite(given) ? given : Infinity);
  return expiry - DOWNLOAD_URL_MARGIN_MS;
}

/** The cached URL of a file, when it may still be handed out at `now`. */
export function cachedUrl(cache: Map<string, CachedUrl>, fileId: string, now: number): string | null {
  const hit = cache.get(fileId);
  return hit && now < hit.reuseUntil ? hit.url : null;
}

/** Keeps a file's URL (when it may be reused at all), dropping stale ones past MAX_CACHED_URLS. */
export function cacheUrl(cache: Map<string, CachedUrl>, fileId: string, entry: CachedUrl, now: number): void {
  if (entry.reuseUntil <= now) return;
  cache.delete(fileId);
  cache.set(fileId, entry);
  bound(cache, MAX_CACHED_URLS, (e) => e.reuseUntil <= now);
}

/** Keeps `map` at most `max` entries: first without the stale ones, then without the oldest inserted. */
function bound<V>(map: Map<string, V>, max: number, stale: (v: V) => boolean): void {
  if (map.size <= max) return;
  for (const [k, v] of map) if (stale(v)) map.delete(k);
  for (const k of map.keys()) {
    if (map.size <= max) break;
    map.delete(k);
  }
}

/** What the Puller answers a file link's request (src/routes/files.ts turns it into the HTTP answer). */
export type FileDownload =
  /** A download URL to redirect to (`reused`: handed out before, within its reuse time). */
  | { kind: "redirect"; url: string; deliveryId: string; reused: boolean }
  /** The file is not one the source's enrichment listed. */
  | { kind: "unknown" }
  /** A limit of the link or of the address is used up: nothing was asked, nothing audited. */
  | { kind: "limited"; limit: "link" | "address"; retryAfterMs: number }
  /** CentrePoint gave no URL (`status` null: no answer, or the relay's own budget refused before any call). */
  | { kind: "failed"; deliveryId: string; status: number | null; reason: string; retryAfterMs: number | null; budget: boolean };
