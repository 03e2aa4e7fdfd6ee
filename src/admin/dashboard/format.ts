/** Pure formatting helpers of the dashboard. Times are epoch ms and shown in UTC. */

/** `2026-11-22 06:10:03 UTC`; an em dash for null. */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d{3}Z$/, " UTC");
}

/** A duration in the largest sensible units: `850 ms`, `42 s`, `3 min`, `2 h 5 min`, `4 d 3 h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(abs)} ms`;
  const s = Math.floor(abs / 1_000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** `3 min ago` / `in 5 s` relative to `now`; `just now` within a second. */
export function formatRelative(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  const delta = ms - now;
  if (Math.abs(delta) < 1_000) return "just now";
  return delta < 0 ? `${formatDuration(-delta)} ago` : `in ${formatDuration(delta)}`;
}

/** Pretty-printed JSON of a text when it parses, else the text unchanged. */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Byte size for people: `512 B`, `3.4 KiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** `n thing` / `n things`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Cuts a text to `max` characters with an ellipsis. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * A `datetime-local` value (`YYYY-MM-DDTHH:MM[:SS]`, read as UTC) or an ISO time with offset,
 * as an ISO string the admin API accepts; null when empty or malformed.
 */
export function utcInputToIso(value: string | undefined): string | null {
  if (!value) return null;
  const local = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?$/.exec(value);
  const iso = local ? `${local[1]}T${local[2]}${local[3] ?? ":00"}Z` : value;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && /^\d{4}-\d{2}-\d{2}T/.test(iso) ? new Date(ms).toISOString() : null;
}

/** An ISO time as a `datetime-local` value in UTC (`YYYY-MM-DDTHH:MM`). */
export function isoToUtcInput(iso: string | null): string {
  return iso ? iso.slice(0, 16) : "";
}
