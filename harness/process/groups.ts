import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sleep } from "../wait.ts";

/**
 * Child processes, temp dirs and free ports of the chaos suite, the bench and the demo (the
 * browser test uses `signalGroup` and `freePort` only). Every child runs in its own
 * process group (detached) so that a crash test can SIGKILL wrangler and both workerd children at
 * once. Groups and temp dirs are registered here and removed on exit, on SIGINT/SIGTERM and on an
 * uncaught error; a detached watchdog also kills a group if this process dies by SIGKILL.
 */

const groups = new Set<number>();
const tempDirs = new Set<string>();
const WATCHDOG = fileURLToPath(new URL("./watchdog.ts", import.meta.url));
/** Longest a watchdog (and so any child it guards) may live: the suite and the bench are far shorter. */
const WATCHDOG_MAX_MS = 15 * 60_000;

/** A child process group we started. */
export interface Group {
  /** PID of the group leader (= the process group id). */
  pid: number;
  child: ChildProcess;
  /** The last ~256 KiB of stdout and stderr, interleaved. */
  output(): string;
  /** Resolves with the exit code (or null after a signal) when the leader exits. */
  exited: Promise<number | null>;
}

/**
 * Spawns `command` in a new process group, with output captured; never inherits the terminal.
 * `echo` copies the output to stderr as it comes; `onLine` gets each complete line of it.
 */
export function spawnGroup(
  command: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; echo?: boolean; onLine?: (line: string) => void },
): Group {
  installCleanup();
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`could not spawn ${command}`);
  const pid = child.pid;
  groups.add(pid);
  let buffer = "";
  const keep = (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    if (opts.echo) process.stderr.write(text);
    buffer = (buffer + text).slice(-262_144);
  };
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on("data", keep);
    if (opts.onLine) {
      const onLine = opts.onLine;
      let partial = "";
      stream?.on("data", (chunk: Buffer) => {
        const lines = (partial + chunk.toString("utf8")).split("\n");
        partial = lines.pop()!.slice(-65_536);
        for (const line of lines) onLine(line);
      });
    }
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  startWatchdog(pid);
  return { pid, child, output: () => buffer, exited };
}

/** Sends `signal` to a whole process group; ignores a group that is already gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * Whether any process of the group is still running. Zombies (killed, not yet reaped by init)
 * count as gone: they hold no ports, files or CPU. Reads /proc where it exists.
 */
export function groupAlive(pid: number): boolean {
  if (!existsSync("/proc/self/stat")) {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid pgrp ...; comm may contain spaces, so parse after the last ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === pid && state !== "Z" && state !== "X") return true;
    } catch {
      /* exited meanwhile */
    }
  }
  return false;
}

/** SIGKILLs a group at once (the crash) and waits, bounded, until none of it is left. */
export async function killGroup(group: Group, waitMs = 5_000): Promise<void> {
  signalGroup(group.pid, "SIGKILL");
  await waitGroupGone(group, waitMs);
  groups.delete(group.pid);
}

/** SIGTERMs a group, then SIGKILLs whatever is left after `graceMs`. */
export async function stopGroup(group: Group, graceMs = 3_000): Promise<void> {
  signalGroup(group.pid, "SIGTERM");
  if (!(await waitGroupGone(group, graceMs))) signalGroup(group.pid, "SIGKILL");
  await waitGroupGone(group, 5_000);
  groups.delete(group.pid);
}

async function waitGroupGone(group: Group, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  // The leader must be reaped (exit event) before the group id stops answering.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([group.exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
  while (Date.now() < deadline) {
    if (!groupAlive(group.pid)) return true;
    await sleep(50);
  }
  return !groupAlive(group.pid);
}

/** A fresh temp dir, removed on exit. */
export function makeTempDir(prefix: string): string {
  installCleanup();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Removes a temp dir now (and forgets it). */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  tempDirs.delete(dir);
}

/** Runs a script's `main` to its end and exits: 0 when it resolves; when it throws, prints the error, stops every group and exits 1. */
export function runAndExit(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      cleanupNow();
      process.exit(1);
    },
  );
}

/** Kills every group still registered and removes every temp dir. Synchronous: safe in an exit handler. */
export function cleanupNow(): void {
  for (const pid of groups) signalGroup(pid, "SIGKILL");
  groups.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  tempDirs.clear();
}

let installed = false;
function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.once("exit", cleanupNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      cleanupNow();
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  }
  process.once("uncaughtException", (e) => {
    console.error(e);
    cleanupNow();
    process.exit(1);
  });
}

/** A detached watchdog that SIGKILLs group `pid` if this process disappears (e.g. killed with -9). */
function startWatchdog(pid: number): void {
  const dog = spawn(process.execPath, [WATCHDOG, String(process.pid), String(pid), String(WATCHDOG_MAX_MS), ...tempDirs], { detached: true, stdio: "ignore" });
  dog.unref();
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
