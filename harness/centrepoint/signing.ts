import { createHmac } from "node:crypto";
import { HEADER } from "../../src/providers/centrepoint/constants.ts";
import { WIRE_NAME } from "./headers.ts";

/** How the simulator authenticates, mirroring the portal's Authentication Types. */
export type Credentials =
  { type: "hmac"; secret: string } | { type: "basic"; username: string; password: string } | { type: "bearer"; token: string } | { type: "none" };

/** CentrePoint's `X-ActiGraph-Signature`: base64 HMAC-SHA256 over the exact body bytes, UTF-8 key. */
export function signBody(secret: string, body: string | Uint8Array): string {
  return createHmac("sha256", Buffer.from(secret, "utf8")).update(body).digest("base64");
}

/** An RFC 7617 `Authorization: Basic` value. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}

/**
 * The credential header for one body (none for `type: "none"`). With `valid: false` the header
 * is well-formed but wrong (signed with another key, a wrong password or token): a relay must
 * answer 401.
 */
export function credentialHeaders(credentials: Credentials, body: string, valid = true): Record<string, string> {
  const spoil = (s: string) => (valid ? s : `${s}-wrong`);
  switch (credentials.type) {
    case "hmac":
      return { [WIRE_NAME[HEADER.signature]]: signBody(spoil(credentials.secret), body) };
    case "basic":
      return { Authorization: basicAuthorization(credentials.username, spoil(credentials.password)) };
    case "bearer":
      return { Authorization: `Bearer ${spoil(credentials.token)}` };
    case "none":
      return {};
  }
}
