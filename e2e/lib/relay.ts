import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, type Group, groupAlive, killGroup, sleep, spawnGroup, stopGroup } from "./processes.ts";
import { WRANGLER_JS, wranglerDevArgs, wranglerEnv as localWranglerEnv } from "../../scripts/lib/wrangler-dev.ts";

/**
 * Runs a Worker under `wrangler dev` (workerd, local KV and Durable Objects persisted to a
 * directory of ours). The project's Worker is first bundled once into a snapshot
 * (`wrangler deploy --dry-run --outdir`), so edits other people make to src/ while a run is in
 * progress cannot reload the runtime under the test; the snapshot is what the whole run tests.
 */

export const PROJECT_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** Environment of every wrangler process (see scripts/lib/wrangler-dev.ts), in CI mode. */
export function wranglerEnv(workDir: string): NodeJS.ProcessEnv {
  return { ...localWranglerEnv(workDir), CI: "true" };
}

/**
 * Runs a wrangler command to completion with Node 22 (`process.execPath`), in its own process
 * group, killed whole after `timeoutMs`. `workDir` is the run's temp dir. Throws on a non-zero exit.
 */
export async function wrangler(args: string[], opts: { cwd: string; workDir: string; timeoutMs?: number }): Promise<string> {
  const group = spawnGroup(process.execPath, [WRANGLER_JS, ...args], { cwd: opts.cwd, env: wranglerEnv(opts.workDir) });
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

/**
 * Bundles the project's Worker into `<workDir>/dist` and writes `<workDir>/wrangler.toml`: the
 * project's own configuration with `main` pointing at the bundle and `no_bundle = true`.
 * Returns the config path.
 */
export async function snapshotProjectWorker(workDir: string): Promise<string> {
  await wrangler(["deploy", "--dry-run", "--outdir", join(workDir, "dist"), "-c", join(PROJECT_ROOT, "wrangler.toml")], {
    cwd: PROJECT_ROOT,
    workDir,
    timeoutMs: 120_000,
  });
  const toml = readFileSync(join(PROJECT_ROOT, "wrangler.toml"), "utf8")
    .replace(/^#:schema.*$/m, "")
    .replace(/^main\s*=.*$/m, 'main = "dist/index.js"\nno_bundle = true');
  if (!toml.includes('main = "dist/index.js"')) throw new Error("wrangler.toml has no top-level main = ... line to rewrite");
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
}

/** A running Worker. */
export interface DevServer {
  url: string;
  port: number;
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
  });
  const cwd = resolve(opts.configPath, "..");
  const group = spawnGroup(process.execPath, args, { cwd, env: wranglerEnv(cwd), echo: opts.echo });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 45_000;
  let exited = false;
  void group.exited.then(() => (exited = true));
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`wrangler dev exited before it was ready:\n${group.output().slice(-4000)}`);
    if (Date.now() > deadline) {
      await killGroup(group);
      throw new Error(`wrangler dev not ready within 45 s:\n${group.output().slice(-4000)}`);
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
