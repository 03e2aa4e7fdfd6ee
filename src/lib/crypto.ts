import { createHash, timingSafeEqual } from "node:crypto";

// Loaded by the Worker and by Node (scripts/verify-archive.ts through ledger/chain.ts): node:crypto
// is its only import, and it uses nothing of either runtime beyond what both have.

const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export const utf8 = (s: string): Uint8Array => encoder.encode(s);

/** SHA-256 as lower-case hex; synchronous so it can run inside a storage transaction. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Constant-time equality of two byte strings (length is not secret). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return timingSafeEqual(a, b);
}

/** Constant-time equality of two strings of any length (compares their SHA-256). */
export function stringsEqual(a: string, b: string): boolean {
  return bytesEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

/** Imported HMAC keys by their bytes (hex), so a key is imported once per isolate, not once per request. */
const hmacKeys = new Map<string, ReturnType<typeof crypto.subtle.importKey>>();
/** Keys kept at most; the relay uses a handful (one per configured secret). */
const HMAC_KEY_CACHE = 256;

/** HMAC-SHA256 of `message` under the key bytes `secret` (WebCrypto; the imported key is cached per isolate). */
export async function hmacSha256(secret: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  const id = toHex(secret);
  let key = hmacKeys.get(id);
  if (!key) {
    if (hmacKeys.size >= HMAC_KEY_CACHE) hmacKeys.clear();
    key = crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    hmacKeys.set(id, key);
  }
  return new Uint8Array(await crypto.subtle.sign("HMAC", await key, message));
}

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Standard base64 (with padding) of bytes. */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s);
}

/** Decodes standard base64; null when malformed. */
export function fromBase64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  try {
    return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}
