import path from "node:path";
import { fileURLToPath } from "node:url";

/** wrangler's CLI entry; run it with `process.execPath` so it gets the project's Node 22. */
export const WRANGLER_JS = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "node_modules", "wrangler", "bin", "wrangler.js");

/** Options of a local `wrangler dev`. */
export interface DevArgs {
  port: number;
  inspectorPort: number;
  /** Local KV and Durable Object storage. */
  persistTo: string;
  /** Dev-only `--var NAME:value` pairs. */
  vars: Record<string, string>;
  /** wrangler config to use instead of ./wrangler.toml. */
  configPath?: string;
  logLevel?: "debug" | "info" | "log" | "warn" | "error" | "none";
}

/** Arguments of `wrangler dev` on 127.0.0.1 with its own storage, for scripts and tests. */
export function wranglerDevArgs(o: DevArgs): string[] {
  return [
    WRANGLER_JS,
    "dev",
    ...(o.configPath ? ["-c", o.configPath] : []),
    "--ip",
    "127.0.0.1",
    "--port",
    String(o.port),
    "--inspector-port",
    String(o.inspectorPort),
    "--persist-to",
    o.persistTo,
    "--show-interactive-dev-session=false",
    ...(o.logLevel ? ["--log-level", o.logLevel] : []),
    ...Object.entries(o.vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
}

/**
 * Environment of a wrangler process that talks only to 127.0.0.1: no telemetry or error reports,
 * no update check (the banner), no download of the `Request.cf` object; logs and the dev registry
 * under `workDir` when given (a temp dir the caller removes).
 */
export function wranglerEnv(workDir?: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    DO_NOT_TRACK: "1",
    WRANGLER_HIDE_BANNER: "true",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    ...(workDir ? { WRANGLER_LOG_PATH: path.join(workDir, "wrangler-logs"), WRANGLER_REGISTRY_PATH: path.join(workDir, "wrangler-registry") } : {}),
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };
}
