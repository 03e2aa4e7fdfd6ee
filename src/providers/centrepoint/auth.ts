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

/**
 * Checks a request against its source's auth setting. The secret is looked up by the name the
 * source document gives; an unset secret fails closed (`secret_unset`), never open.
 */
export async function authenticate(
  auth: SourceConfig["auth"],
  env: object,
  creds: PresentedCredentials,
  rawBody: Uint8Array,
): Promise<Result<void, { reason: AuthError; secretName?: string }>> {
  const fail = (reason: AuthError, secretName?: string) => err({ reason, secretName });
  switch (auth.type) {
    case "none":
      return ok(undefined);
    case "hmac": {
      const secret = readSecret(env, auth.secretEnv);
      if (!secret) return fail("secret_unset", auth.secretEnv);
      const r = await verifyHmacSignature(secret, rawBody, creds.signature);
      return r.ok ? r : fail(r.error);
    }
    case "basic": {
      const password = readSecret(env, auth.passwordEnv);
      if (!password) return fail("secret_unset", auth.passwordEnv);
      const r = verifyBasic(auth.username, password, creds.authorization);
      return r.ok ? r : fail(r.error);
    }
    case "bearer": {
      const token = readSecret(env, auth.tokenEnv);
      if (!token) return fail("secret_unset", auth.tokenEnv);
      const r = verifyBearer(token, creds.authorization);
      return r.ok ? r : fail(r.error);
    }
  }
}
