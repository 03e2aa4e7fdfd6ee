import type { SourceConfig } from "../../config/schemas";
import { readSecret } from "../../config/store";
import { err, ok, type Result } from "../../lib/result";
import { type AuthFailure, verifyBasic, verifyBearer, verifyHmacSignature } from "./verify";

/** Why a request was not authenticated; `secret_unset` means the source fails closed. */
export type AuthError = AuthFailure | "secret_unset";

/** The credentials of one request, as CentrePoint would send them. */
export interface PresentedCredentials {
  authorization: string | undefined;
  signature: string | undefined;
}

type Check = (secret: string) => Promise<Result<void, AuthFailure>> | Result<void, AuthFailure>;

/**
 * Checks a request against its source's auth setting. Secrets are looked up by the names the
 * source document gives; the current secret must be set (else `secret_unset`: fail closed),
 * and a `previous*Env` secret being rotated out is also accepted while it is set.
 */
export async function authenticate(
  auth: SourceConfig["auth"],
  env: object,
  creds: PresentedCredentials,
  rawBody: Uint8Array,
): Promise<Result<void, { reason: AuthError; secretName?: string }>> {
  switch (auth.type) {
    case "none":
      return ok(undefined);
    case "hmac":
      return checkWith(env, auth.secretEnv, auth.previousSecretEnv, (s) => verifyHmacSignature(s, rawBody, creds.signature));
    case "basic":
      return checkWith(env, auth.passwordEnv, auth.previousPasswordEnv, (s) => verifyBasic(auth.username, s, creds.authorization));
    case "bearer":
      return checkWith(env, auth.tokenEnv, auth.previousTokenEnv, (s) => verifyBearer(s, creds.authorization));
  }
}

async function checkWith(
  env: object,
  currentName: string,
  previousName: string | undefined,
  check: Check,
): Promise<Result<void, { reason: AuthError; secretName?: string }>> {
  const current = readSecret(env, currentName);
  if (!current) return err({ reason: "secret_unset", secretName: currentName });
  const first = await check(current);
  if (first.ok) return first;
  const previous = previousName ? readSecret(env, previousName) : undefined;
  if (previous && first.error === "mismatch" && (await check(previous)).ok) return ok(undefined);
  return err({ reason: first.error });
}
