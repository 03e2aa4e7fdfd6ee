/**
 * One JSON object per line on the console (Workers Logs / `wrangler tail` parse it).
 * Callers must never pass secrets or bodies; as a second guard, the value of every token-like query
 * parameter (a file link's `sig`, a SAS `sig`, `token`, `access_token`, ...) in any URL a field quotes
 * is replaced with `[redacted]` (see `redactUrlSecrets`).
 */
export function log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
  const line = redactUrlSecrets(JSON.stringify({ level, msg, ...fields }));
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

/** Query parameters whose value is a credential: never logged. */
const SECRET_PARAMS = /([?&](?:sig|signature|token|access_token|refresh_token|id_token|client_secret|secret|password|api_key|apikey|key)=)[^&#\s"\\]+/gi;

/** `text` with the value of every token-like query parameter replaced by `[redacted]` (works on URLs and on JSON text quoting them). */
export function redactUrlSecrets(text: string): string {
  return text.replace(SECRET_PARAMS, "$1[redacted]");
}
