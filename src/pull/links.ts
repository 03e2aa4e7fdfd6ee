/**
 * Relay links to CentrePoint data files (docs/pull.md, "Durable links"): `GET /files/:source/:fileId
 * ?t=<target>&exp=<unix seconds>&sig=<signature>`. The signature is HMAC-SHA256 under the Worker
 * secret FILE_LINK_SECRET over a versioned message naming the source, the file, the target the link
 * was issued to and the expiry, base64url without padding. Pure and synchronous (node:crypto), so a
 * link can be made inside the ledger's hand-off. The signature is not a secret; the key is.
 */
import { createHmac } from "node:crypto";
import { bytesEqual } from "../lib/crypto";
import { err, ok, type Result } from "../lib/result";

/** Path prefix of relay links. */
export const FILES_PATH = "/files";

/** What a link names and until when it works. */
export interface LinkClaims {
  source: string;
  fileId: string;
  /** The target the link was issued to (its audit rows name it). */
  target: string;
  /** Expiry, Unix seconds. */
  exp: number;
}

/** The keys a link may be signed with: the current one first, then the one being rotated out. Secret material. */
export type LinkKeys = readonly string[];

/** The signed message: one field per line, after a version tag (ids cannot contain a newline). */
function message(c: LinkClaims): string {
  return `centrepoint-relay-file-link:v1\n${c.source}\n${c.fileId}\n${c.target}\n${c.exp}`;
}

/** The signature of claims under one key, base64url without padding. */
export function signLink(key: string, c: LinkClaims): string {
  return createHmac("sha256", key).update(message(c)).digest("base64url");
}

/** The keys set in the Worker's environment (FILE_LINK_SECRET, then FILE_LINK_SECRET_PREVIOUS), empty when links are off. */
export function linkKeys(env: { FILE_LINK_SECRET?: string; FILE_LINK_SECRET_PREVIOUS?: string }): LinkKeys {
  return [env.FILE_LINK_SECRET, env.FILE_LINK_SECRET_PREVIOUS].filter((k): k is string => typeof k === "string" && k.length > 0);
}

/**
 * The relay link of a file: absolute on `publicUrl` (RELAY_PUBLIC_URL), relative (`/files/...`)
 * when it is empty. Signed with the current key (`keys[0]`).
 */
export function buildLink(publicUrl: string, key: string, c: LinkClaims): string {
  const base = publicUrl.replace(/\/+$/, "");
  const query = new URLSearchParams({ t: c.target, exp: String(c.exp), sig: signLink(key, c) });
  return `${base}${FILES_PATH}/${encodeURIComponent(c.source)}/${encodeURIComponent(c.fileId)}?${query}`;
}

/** A link's expiry, Unix seconds: `now` + the target's lifetime, never after CentrePoint's expiry of the file. */
export function linkExpiry(now: number, ttlHours: number, fileExpiresAt: string | null): number {
  const own = now + ttlHours * 3_600_000;
  const upstream = fileExpiresAt === null ? NaN : Date.parse(fileExpiresAt);
  return Math.floor((Number.isFinite(upstream) ? Math.min(own, upstream) : own) / 1000);
}

/** Why a link was refused, in the order it is checked. */
export type LinkRefusal = "signature" | "expired";

/**
 * Checks a link: the signature first (under any of `keys`, constant-time), then the expiry at `now`
 * (epoch ms). Returns the claims when both hold.
 */
export function verifyLink(
  raw: { source: string; fileId: string; target: string | undefined; exp: string | undefined; sig: string | undefined },
  keys: LinkKeys,
  now: number,
): Result<LinkClaims, LinkRefusal> {
  if (raw.target === undefined || raw.exp === undefined || raw.sig === undefined || !/^\d{1,12}$/.test(raw.exp)) return err("signature");
  const claims: LinkClaims = { source: raw.source, fileId: raw.fileId, target: raw.target, exp: Number(raw.exp) };
  const given = new TextEncoder().encode(raw.sig);
  const valid = keys.some((key) => bytesEqual(new TextEncoder().encode(signLink(key, claims)), given));
  if (!valid) return err("signature");
  if (claims.exp * 1000 <= now) return err("expired");
  return ok(claims);
}
