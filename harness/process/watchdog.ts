import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, resolve } from "node:path";

/**
 * Detached guard of one child process group:
 * `node watchdog.ts <ownerPid> <groupPid> <maxMs> [tempDir...]`.
 * Polls twice a second; when the owner (the test or bench process) is gone, or maxMs has passed,
 * it SIGKILLs the group and, if the owner is gone (it could not clean up: killed with -9), removes
 * the owner's temp dirs (only direct children of the OS temp dir named `cp-relay-*`). It exits as
 * soon as the group is gone. Bounded in time and in work.
 */
const [ownerArg, groupArg, maxArg, ...dirs] = process.argv.slice(2);
const owner = Number(ownerArg);
const group = Number(groupArg);
const deadline = Date.now() + (Number(maxArg) || 15 * 60_000);

/** Whether a process (pid > 0) or process group (pid < 0) exists; a zombie owner counts as gone. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (pid < 0) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust kill(0)
  }
};

if (!(owner > 1 && group > 1)) process.exit(2);
const timer = setInterval(() => {
  if (!alive(-group)) {
    clearInterval(timer);
    return;
  }
  const ownerGone = !alive(owner);
  if (ownerGone || Date.now() > deadline) {
    try {
      process.kill(-group, "SIGKILL");
    } catch {
      /* already gone */
    }
    clearInterval(timer);
    if (ownerGone) setTimeout(removeDirs, 1_000); // after the runtime has let go of its files
  }
}, 500);

function removeDirs(): void {
  for (const dir of dirs) {
    const full = resolve(dir);
    if (dirname(full) !== resolve(tmpdir()) || !basename(full).startsWith("cp-relay-")) continue;
    try {
      rmSync(full, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}
