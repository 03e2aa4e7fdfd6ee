import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, type Group, groupAlive, killGroup, spawnGroup, stopGroup } from "./groups.ts";
import { sleep } from "../wait.ts";

/**
 * `wrangler dev` for the demo, the browser test, the chaos suite and the bench: its arguments and
 * environment (127.0.0.1 only, no telemetry), and a managed run of a Worker (`startDev`). For the
 * suite and the bench the project's Worker is first bundled once into a snapshot
 * (`wrangler deploy --dry-run --outdir`), so edits other people make to src/ while a run is in
 * progress cannot reload the runtime under the test; the snapshot is what the whole run tests.
 */

export const PROJECT_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** wrangler's CLI entry; run it with `process.execPath` so it gets the project's Node 22. */
export const WRANGLER_JS = join(PROJECT_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

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
  /** `--test-scheduled`: GET /__scheduled?cron=<expression> runs that Cron Trigger (wrangler dev runs none by itself). */
  testScheduled?: boolean;
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
    ...(o.testScheduled ? ["--test-scheduled"] : []),
    ...Object.entries(o.vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
}

/**
 * Environment of a wrangler process that talks only to 127.0.0.1: no telemetry or error reports,
 * no update check (the banner), no download of the `Request.cf` object; logs and the dev registry
 * under `workDir` when given (a temp dir the caller removes); `ci` adds `CI=true` (wrangler's
 * non-interactive mode, as the chaos suite and the bench run it).
 */
export function wranglerEnv(options: { workDir?: string; ci?: boolean } = {}): NodeJS.ProcessEnv {
  const { workDir, ci = false } = options;
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    DO_NOT_TRACK: "1",
    WRANGLER_HIDE_BANNER: "true",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    ...(workDir ? { WRANGLER_LOG_PATH: join(workDir, "wrangler-logs"), WRANGLER_REGISTRY_PATH: join(workDir, "wrangler-registry") } : {}),
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    ...(ci ? { CI: "true" } : {}),
  };
}

/**
 * Runs a wrangler command to completion with Node 22 (`process.execPath`), in its own process
 * group, killed whole after `timeoutMs`. `workDir` is the run's temp dir. Throws on a non-zero exit.
 */
export async function wrangler(args: string[], opts: { cwd: string; workDir: string; timeoutMs?: number }): Promise<string> {
  const group = spawnGroup(process.execPath, [WRANGLER_JS, ...args], { cwd: opts.cwd, env: wranglerEnv({ workDir: opts.workDir, ci: true }) });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([group.exited, new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)))]);
  clearTimeout(timer);
  await killGroup(group); // reaps anything the command left behind (and the command itself on timeout)
  if (code !== 0)
    throw new Error(
      `wrangler ${args.slice(0, 3).join(" ")} ${code === "timeout" ? `timed out after ${timeoutMs} ms` : `exited with ${code}`}:\n${group.output().slice(-4000)}`,
    );
  return group.output();
}

/** A variant of the project's Worker: another entry module (a path from the project root) and edits of its configuration. */
export interface WorkerVariant {
  entry: string;
  edit: (toml: string) => string;
}

/**
 * Bundles the project's Worker (or a variant of it) into `<workDir>/dist` and writes
 * `<workDir>/wrangler.toml`: the project's own configuration with `main` pointing at the bundle
 * and `no_bundle = true`. Returns the config path.
 */
export async function snapshotProjectWorker(workDir: string, variant?: WorkerVariant): Promise<string> {
  const project = readFileSync(join(PROJECT_ROOT, "wrangler.toml"), "utf8");
  let source = join(PROJECT_ROOT, "wrangler.toml");
  if (variant) {
    // Beside the project's own, so that paths in it resolve the same way.
    source = join(PROJECT_ROOT, `.wrangler-variant-${process.pid}.toml`);
    writeFileSync(source, variant.edit(project).replace(/^main\s*=.*$/m, `main = ${JSON.stringify(variant.entry)}`));
  }
  try {
    await wrangler(["deploy", "--dry-run", "--outdir", join(workDir, "dist"), "-c", source], { cwd: PROJECT_ROOT, workDir, timeoutMs: 120_000 });
  } finally {
    if (variant) rmSync(source, { force: true });
  }
  // The bundle is named after the entry module.
  const bundle = `dist/${basename(variant?.entry ?? "index.ts").replace(/\.[mc]?[jt]s$/, "")}.js`;
  const toml = (variant ? variant.edit(project) : project).replace(/^#:schema.*$/m, "").replace(/^main\s*=.*$/m, `main = "${bundle}"\nno_bundle = true`);
  if (!toml.includes(`main = "${bundle}"`)) throw new Error("wrangler.toml has no top-level main = ... line to rewrite");
  const configPath = join(workDir, "wrangler.toml");
  writeFileSync(configPath, toml);
  return configPath;
}

/** Options of one `wrangler dev` run. */
export interface DevOptions {
  /** wrangler config to run (its directory also gets wrangler's own `.wrangler/tmp`). */
  configPath: string;
  /** Local KV / DO / cache storage; the same directory across restarts keeps the state. */
  persistTo: string;
  /** `--var NAME:value` pairs (dev-only values). */
  vars: Record<string, string>;
  /** Port to listen on (kept across restarts); a free one when omitted. */
  port?: number;
  /** wrangler's --log-level; `info` prints one line per request (kept in the output buffer). */
  logLevel?: "debug" | "info" | "log" | "warn" | "error" | "none";
  /** Copy the runtime's output to stderr as it comes. */
  echo?: boolean;
  /** Called with each line of the runtime's output. */
  onLine?: (line: string) => void;
  /** wrangler's own logs and dev registry (a temp dir); the config's directory when omitted. */
  workDir?: string;
  /** How long to wait for GET /healthz (default 45 s). */
  readyTimeoutMs?: number;
  /** Expose GET /__scheduled?cron=<expression> (wrangler's --test-scheduled). */
  testScheduled?: boolean;
}

/** A running Worker. */
export interface DevServer {
  url: string;
  port: number;
  /** The V8 inspector of the runtime (Chrome DevTools Protocol), e.g. for CPU profiles. */
  inspectorPort: number;
  group: Group;
  /** The crash: SIGKILL wrangler and its workerd children (the whole process group). */
  kill9(): Promise<void>;
  /** A clean stop (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
  output(): string;
}

/** Starts `wrangler dev` on 127.0.0.1 and waits (bounded) until GET /healthz answers. */
export async function startDev(opts: DevOptions): Promise<DevServer> {
  const port = opts.port ?? (await freePort());
  const inspectorPort = await freePort();
  const args = wranglerDevArgs({
    port,
    inspectorPort,
    persistTo: opts.persistTo,
    vars: opts.vars,
    configPath: opts.configPath,
    logLevel: opts.logLevel ?? "info",
    testScheduled: opts.testScheduled,
  });
  const cwd = resolve(opts.configPath, "..");
  const group = spawnGroup(process.execPath, args, { cwd, env: wranglerEnv({ workDir: opts.workDir ?? cwd, ci: true }), echo: opts.echo, onLine: opts.onLine });
  const url = `http://127.0.0.1:${port}`;
  const readyMs = opts.readyTimeoutMs ?? 45_000;
  const deadline = Date.now() + readyMs;
  let exited = false;
  void group.exited.then(() => (exited = true));
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`wrangler dev exited before it was ready:\n${group.output().slice(-4000)}`);
    if (Date.now() > deadline) {
      await killGroup(group);
      throw new Error(`wrangler dev not ready within ${readyMs / 1000} s:\n${group.output().slice(-4000)}`);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 404) break;
    } catch {
      /* not listening yet */
    }
    await sleep(Math.min(100 + i * 20, 300));
  }
  return {
    url,
    port,
    inspectorPort,
    group,
    kill9: () => killGroup(group),
    stop: () => stopGroup(group),
    output: () => group.output(),
  };
}

/** Whether the server's process group still has a live process. */
export function devAlive(server: DevServer): boolean {
  return groupAlive(server.group.pid);
}
