/**
 * One JSON object per line on the console (Workers Logs / `wrangler tail` parse it).
 * Callers must never pass secrets or bodies.
 */
export function log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
