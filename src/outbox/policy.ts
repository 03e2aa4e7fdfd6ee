import type { TargetConfig } from "../config/schemas";
import type { Bindings } from "../env";
import { err, ok, type Result } from "../lib/result";

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Target URL policy: https only; plain http only to a loopback host, and only when
 * ALLOW_HTTP_TARGETS is "true" (local development and tests).
 */
export function checkTargetUrl(url: string, allowHttp: boolean): Result<void, string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return err("must be an absolute URL");
  }
  if (parsed.username || parsed.password) return err("must not carry credentials; use auth with a named secret");
  if (parsed.protocol === "https:") return ok(undefined);
  if (parsed.protocol !== "http:") return err("must be an https:// URL");
  if (!allowHttp) return err("must be an https:// URL (http:// is allowed only to loopback with ALLOW_HTTP_TARGETS=true)");
  if (!LOOPBACK.test(parsed.hostname)) return err("http:// is allowed only to loopback hosts (127.0.0.0/8, ::1, localhost)");
  return ok(undefined);
}

/** Called after a target document is saved: an enabled target resumes its held events. */
export async function onTargetSaved(env: Bindings, id: string, config: TargetConfig): Promise<void> {
  if (config.enabled) await env.OUTBOX.get(env.OUTBOX.idFromName(id)).resume();
}
