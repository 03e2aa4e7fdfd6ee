import type { CentrePointApiConfig, FieldError } from "../config/schemas";
import { readSecret } from "../config/store";
import type { Bindings } from "../env";
import { err, ok, type Result } from "../lib/result";
import { checkTargetUrl } from "../outbox/policy";

/**
 * A source's `centrepoint` block made usable: its base URLs checked against the outbound URL policy
 * (https, or loopback http with ALLOW_HTTP_TARGETS="true": on save, and again here before every
 * use, because the variable can change after the document was saved) and its client credentials
 * read from the Worker's secrets.
 */

/** Field errors of the block's base URLs under the outbound URL policy (src/outbox/policy.ts). */
export function centrepointUrlErrors(block: Pick<CentrePointApiConfig, "apiUrl" | "authUrl">, allowHttp: boolean): FieldError[] {
  return (["apiUrl", "authUrl"] as const).flatMap((field) => {
    const checked = checkTargetUrl(block[field], allowHttp);
    return checked.ok ? [] : [{ path: `centrepoint.${field}`, message: checked.error }];
  });
}

/** What the API client needs. `clientSecret` is secret material: pass it to the client, never log or store it. */
export interface ApiCredentials {
  apiUrl: string;
  authUrl: string;
  clientId: string;
  clientSecret: string;
}

/** The block's URLs, if the policy allows them, and its credentials, if both secrets are set; else a sentence naming what is wrong (names only). */
export function resolveCredentials(env: Bindings, block: CentrePointApiConfig): Result<ApiCredentials, string> {
  const urls = centrepointUrlErrors(block, env.ALLOW_HTTP_TARGETS === "true");
  if (urls.length > 0) return err(urls.map((e) => `${e.path} ${e.message}`).join("; "));
  const clientId = readSecret(env, block.clientIdEnv);
  const clientSecret = readSecret(env, block.clientSecretEnv);
  const unset = [clientId === undefined && block.clientIdEnv, clientSecret === undefined && block.clientSecretEnv].filter(Boolean);
  if (clientId === undefined || clientSecret === undefined)
    return err(`the Worker secret${unset.length > 1 ? "s" : ""} ${unset.join(" and ")} ${unset.length > 1 ? "are" : "is"} not set (wrangler secret put)`);
  return ok({ apiUrl: block.apiUrl, authUrl: block.authUrl, clientId, clientSecret });
}
