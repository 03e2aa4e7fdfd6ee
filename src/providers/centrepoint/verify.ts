import { bytesEqual, fromBase64, hmacSha256, stringsEqual, utf8 } from "../../lib/crypto";
import { err, ok, type Result } from "../../lib/result";

/** Why a credential check failed; internal detail for logs, never shown to the caller. */
export type AuthFailure = "missing" | "malformed" | "mismatch";

/**
 * Checks CentrePoint's `X-ActiGraph-Signature`: standard base64 of HMAC-SHA256 over the raw
 * body bytes, keyed with the UTF-8 bytes of the secret. Constant-time comparison.
 */
export async function verifyHmacSignature(secret: string, rawBody: Uint8Array, signature: string | undefined): Promise<Result<void, AuthFailure>> {
  if (!signature) return err("missing");
  const given = fromBase64(signature.trim());
  if (!given || given.byteLength !== 32) return err("malformed");
  const expected = await hmacSha256(utf8(secret), rawBody);
  return bytesEqual(given, expected) ? ok(undefined) : err("mismatch");
}

/** Checks `Authorization: Basic base64(user:password)` (RFC 7617) in constant time. */
export function verifyBasic(username: string, password: string, authorization: string | undefined): Result<void, AuthFailure> {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? "");
  if (!authorization) return err("missing");
  if (!match) return err("malformed");
  const decoded = fromBase64(match[1]!);
  if (!decoded) return err("malformed");
  const text = new TextDecoder().decode(decoded);
  const colon = text.indexOf(":");
  if (colon < 0) return err("malformed");
  // Both halves are always compared so timing does not reveal which one differed.
  const userOk = stringsEqual(text.slice(0, colon), username);
  const passOk = stringsEqual(text.slice(colon + 1), password);
  return userOk && passOk ? ok(undefined) : err("mismatch");
}

/** Checks `Authorization: Bearer <token>` in constant time. */
export function verifyBearer(token: string, authorization: string | undefined): Result<void, AuthFailure> {
  if (!authorization) return err("missing");
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match) return err("malformed");
  return stringsEqual(match[1]!, token) ? ok(undefined) : err("mismatch");
}
