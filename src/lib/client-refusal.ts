/**
 * When CentrePoint refused the relay's own API client (a rotated, revoked or under-scoped client
 * secret): the one rule behind `centrepoint_auth_failed` (docs/alerting.md), shared by the places
 * that report it (reconciliation, enrichment lookups, raw-data requests) and the one-minute
 * evaluation, which sees only a stored status and endpoint.
 */

/** Path of CentrePoint's token endpoint below the auth base URL (an IdentityServer: `/connect/token`). */
export const TOKEN_PATH = "/connect/token";

/** What is known of an answer: CentrePoint's status (null when it did not answer) and the endpoint, as API errors name it. */
export interface UpstreamAnswer {
  status: number | null;
  endpoint: string;
}

/**
 * True when the answer means the client itself was refused: 401 or 403 from any endpoint, or 400
 * from the token endpoint, which is how OAuth2 token endpoints answer a wrong client secret
 * (`invalid_client`), a disabled client (`unauthorized_client`) or a scope it no longer has
 * (`invalid_scope`). A 400 from any other endpoint is a bad request, not a refused client.
 */
export function refusesClient(answer: UpstreamAnswer | null | undefined): answer is UpstreamAnswer & { status: number } {
  if (!answer || answer.status === null) return false;
  return answer.status === 401 || answer.status === 403 || (answer.status === 400 && answer.endpoint === TOKEN_PATH);
}
