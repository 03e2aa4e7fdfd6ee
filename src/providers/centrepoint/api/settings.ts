import type { CentrePointApiConfig, FieldError } from "../../../config/schemas";
import { readSecret } from "../../../config/store";
import type { Bindings } from "../../../env";
import { err, ok, type Result } from "../../../lib/result";
import { checkTargetUrl, isLoopbackHost } from "../../../lib/url-policy";

/**
 * A source's `centrepoint` block made usable: its base URLs checked (on save, and again here before
 * every use, because the variables can change after the document was saved) and its client
 * credentials read from the Worker's secrets. A base URL must pass the outbound URL policy (https,
 * or loopback http with ALLOW_HTTP_TARGETS="true") and name CentrePoint's own host for its field
 * (CENTREPOINT_HOSTS), a host listed in CENTREPOINT_API_HOSTS, or loopback (allowed by the policy
 * only with ALLOW_HTTP_TARGETS): the client secret and the tokens go nowhere else.
 */

/** CentrePoint's own host of each base URL. */
export const CENTREPOINT_HOSTS = { apiUrl: "api.actigraphcorp.com", authUrl: "auth.actigraphcorp.com" } as const;

/** The hostnames CENTREPOINT_API_HOSTS allows besides CentrePoint's own: comma-separated, case-insensitive, blanks ignored. */
export function listedApiHosts(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
}

/** The variables the URL check reads. */
export type UrlPolicyVars = Pick<Bindings, "ALLOW_HTTP_TARGETS" | "CENTREPOINT_API_HOSTS">;

/** Field errors of the block's base URLs under the outbound URL policy (src/lib/url-policy.ts) and the API host rule. */
export function centrepointUrlErrors(block: Pick<CentrePointApiConfig, "apiUrl" | "authUrl">, vars: UrlPolicyVars): FieldError[] {
  const listed = listedApiHosts(vars.CENTREPOINT_API_HOSTS);
  return (["apiUrl", "authUrl"] as const).flatMap((field) => {
    const path = `centrepoint.${field}`;
    const checked = checkTargetUrl(block[field], vars.ALLOW_HTTP_TARGETS === "true");
    if (!checked.ok) return [{ path, message: checked.error }];
    const host = new URL(block[field]).hostname.toLowerCase();
    if (host === CENTREPOINT_HOSTS[field] || listed.includes(host) || isLoopbackHost(host)) return [];
    return [
      {
        path,
        message: `must be on ${CENTREPOINT_HOSTS[field]} (CentrePoint's own) or on a host listed in the CENTREPOINT_API_HOSTS variable; ${host} is neither`,
      },
    ];
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
  const urls = centrepointUrlErrors(block, env);
  if (urls.length > 0) return err(urls.map((e) => `${e.path} ${e.message}`).join("; "));
  const clientId = readSecret(env, block.clientIdEnv);
  const clientSecret = readSecret(env, block.clientSecretEnv);
  const unset = [clientId === undefined && block.clientIdEnv, clientSecret === undefined && block.clientSecretEnv].filter(Boolean);
  if (clientId === undefined || clientSecret === undefined)
    return err(`the Worker secret${unset.length > 1 ? "s" : ""} ${unset.join(" and ")} ${unset.length > 1 ? "are" : "is"} not set (wrangler secret put)`);
  return ok({ apiUrl: block.apiUrl, authUrl: block.authUrl, clientId, clientSecret });
}
