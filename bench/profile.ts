/**
 * CPU profile of the relay under fan-out load, from the runtime's V8 inspector (the one
 * `wrangler dev --inspector-port` exposes, Chrome DevTools Protocol). Not part of CI.
 * Run: `npm run bench:profile -- [rate] [seconds] [no-hang]` (default 100 events/s for 10 s, three targets:
 * two receivers on 127.0.0.1 and one that never answers). Prints the top frames by self time and
 * by total time, and writes the raw profile (.cpuprofile, loadable in Chrome DevTools) to the system temp
 * directory. Everything runs on 127.0.0.1; every process started is stopped; bounded in time.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adminClient } from "../harness/http/client.ts";
import { cleanupNow, makeTempDir, runAndExit } from "../harness/process/groups.ts";
import { snapshotProjectWorker, startDev } from "../harness/process/wrangler-dev.ts";
import { startTarget } from "../harness/targets/controllable-target.ts";
import { sleep, waitFor } from "../harness/wait.ts";
import { DatabaseSync } from "node:sqlite";
import { percentile } from "../harness/stats.ts";
import { postUpload } from "./post.ts";
import { findDo } from "./storage.ts";

/** `npm run bench:profile -- drain [events] [concurrency]`: the profile of one target draining a held backlog instead. */
const DRAIN = process.argv[2] === "drain";
const RATE = DRAIN ? 0 : Number(process.argv[2] ?? 100);
const SECONDS = DRAIN ? 0 : Number(process.argv[3] ?? 10);
/** `npm run bench:profile -- 50 10 no-hang`: without the target that never answers, to compare. */
const HANG = process.argv[4] !== "no-hang";
const DRAIN_EVENTS = DRAIN ? Math.min(Number(process.argv[3] ?? 3_000), 20_000) : 0;
const DRAIN_CONCURRENCY = DRAIN && process.argv[4] ? Number(process.argv[4]) : undefined;
const ADMIN_TOKEN = "profile-dev-only-admin-token";
const HMAC_SECRET = "profile-dev-only-hmac-secret";
const GUARD_MS = process.argv[2] === "drain" ? 600_000 : 240_000;

const guard = setTimeout(() => {
  console.error("profile: guard hit; stopping everything");
  cleanupNow();
  process.exit(1);
}, GUARD_MS);
guard.unref();

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A minimal CDP client over the inspector's WebSocket. */
async function inspector(port: number) {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as { webSocketDebuggerUrl: string; title?: string }[];
  const target = targets[0];
  if (!target) throw new Error("the inspector lists no target");
  // wrangler's inspector proxy accepts DevTools origins only; localhost is one of them.
  const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { origin: "http://localhost" } } as unknown as string[]);
  await new Promise<void>((resolve, reject) => ((ws.onopen = () => resolve()), (ws.onerror = () => reject(new Error("inspector connection failed")))));
  let next = 1;
  const pending = new Map<number, (r: unknown) => void>();
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data)) as { id?: number; result?: unknown };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
  };
  const send = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close(), title: target.title ?? "" };
}

/** Frames ranked by self and total sampled time (ms). */
function rank(profile: Profile): { self: [string, number][]; total: [string, number][]; totalMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (f: CallFrame) => `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\//, "")}:${f.lineNumber + 1}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    const node = byId.get(id);
    if (!node) return;
    self.set(label(node.callFrame), (self.get(label(node.callFrame)) ?? 0) + ms);
    const seen = new Set<string>();
    for (let n: ProfileNode | undefined = node, guard = 0; n && guard < 500; n = byId.get(parent.get(n.id) ?? -1), guard++) {
      const l = label(n.callFrame);
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + ms);
    }
  });
  const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, 25);
  return { self: top(self), total: top(total), totalMs };
}

/** Starts the profiler on the runtime; `stop()` returns its profile and prints the top frames. */
async function startProfile(port: number) {
  const cdp = await inspector(port);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
  await cdp.send("Profiler.start");
  return {
    async stop(what: string, wallMs: number): Promise<void> {
      const { profile } = (await cdp.send("Profiler.stop")) as { profile: Profile };
      cdp.close();
      // Outside the work dir, which is removed on exit.
      const file = join(tmpdir(), `relay-${Date.now()}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      const ranked = rank(profile);
      console.log(`profile of ${cdp.title}: ${what}; ${Math.round(ranked.totalMs)} ms sampled over ${Math.round(wallMs)} ms of wall time; raw: ${file}`);
      console.log("\ntop frames by self time (ms):");
      for (const [l, ms] of ranked.self) console.log(`  ${ms.toFixed(0).padStart(6)}  ${l}`);
      console.log("\ntop frames by total time (ms):");
      for (const [l, ms] of ranked.total) console.log(`  ${ms.toFixed(0).padStart(6)}  ${l}`);
    },
  };
}

/** CPU time (ms) used so far by the processes of a group (the runtime: wrangler, workerd), from /proc; null where /proc is missing. */
function groupCpuMs(pgid: number): number | null {
  try {
    let ticks = 0;
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        if (Number(f[2]) === pgid) ticks += Number(f[11]) + Number(f[12]);
      } catch {
        // gone meanwhile
      }
    }
    return (ticks * 1000) / 100;
  } catch {
    return null;
  }
}

/** The project's Worker, bundled, under `wrangler dev` with throw-away storage; with PROFILE_ECHO=1 its lines (info and up) go to stderr. */
async function startRelay() {
  const workDir = makeTempDir("cp-relay-profile-");
  const config = await snapshotProjectWorker(workDir);
  const relay = await startDev({
    configPath: config,
    persistTo: join(workDir, "state"),
    vars: { ADMIN_TOKEN, ALLOW_HTTP_TARGETS: "true", PROFILE_HMAC: HMAC_SECRET },
    logLevel: process.env.PROFILE_ECHO ? "info" : "warn",
    onLine: process.env.PROFILE_ECHO ? (l) => void process.stderr.write(`${l.slice(0, 300)}\n`) : undefined,
  });
  return { relay, workDir };
}

/** The drain profile: DRAIN_EVENTS events held for a disabled target, then released at once and timed at the receiver. */
async function drainProfile(): Promise<void> {
  const { relay } = await startRelay();
  const admin = adminClient(relay.url, ADMIN_TOKEN);
  const receiver = await startTarget("receiver-drain");
  await admin.call("PUT", "/sources/profile", { auth: { type: "hmac", secretEnv: "PROFILE_HMAC" }, allowedIps: ["127.0.0.1"] });
  const doc = { url: receiver.url, ...(DRAIN_CONCURRENCY && { concurrency: DRAIN_CONCURRENCY }) };
  await admin.call("PUT", `/targets/${receiver.name}`, { ...doc, enabled: false });
  const queueStart = performance.now();
  for (let i = 0; i < DRAIN_EVENTS; i += 20)
    await Promise.all(Array.from({ length: Math.min(20, DRAIN_EVENTS - i) }, (_, k) => postUpload(relay.url, "profile", `d-${i + k}`, HMAC_SECRET)));
  console.log(`drain: ${DRAIN_EVENTS} events posted in ${Math.round(performance.now() - queueStart)} ms; waiting until the outbox holds them`);
  await waitFor("every event held", async () => ((await admin.call("GET", `/targets/${receiver.name}/health`)).json?.counts?.held ?? 0) >= DRAIN_EVENTS, {
    timeoutMs: 120_000,
    intervalMs: 500,
  });
  await sleep(1_000);
  const profiler = await startProfile(relay.inspectorPort);
  const cpu0 = groupCpuMs(relay.group.pid);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  await admin.call("PUT", `/targets/${receiver.name}`, doc);
  await waitFor("the backlog drained", () => receiver.delivered().size >= DRAIN_EVENTS, { timeoutMs: 180_000, intervalMs: 100 });
  const wallMs = performance.now() - t0;
  const cpu1 = groupCpuMs(relay.group.pid);
  const self = process.cpuUsage(self0);
  const times = receiver.arrivals.map((a) => a.at).sort((a, b) => a - b);
  const spanS = (times.at(-1)! - times[0]!) / 1000;
  await profiler.stop(`drain of ${DRAIN_EVENTS} held events, concurrency ${DRAIN_CONCURRENCY ?? "default"}`, wallMs);
  console.log(
    `\ndrain: ${receiver.delivered().size} events in ${spanS.toFixed(2)} s from first to last arrival = ${Math.round(DRAIN_EVENTS / spanS)} events/s (${receiver.arrivals.length} requests)`,
  );
  if (cpu0 !== null && cpu1 !== null)
    console.log(
      `CPU per event: runtime group ${((cpu1 - cpu0) / DRAIN_EVENTS).toFixed(3)} ms; this process (receiver, client) ${((self.user + self.system) / 1000 / DRAIN_EVENTS).toFixed(3)} ms`,
    );
  await relay.stop();
  await receiver.close();
}

async function main(): Promise<void> {
  if (DRAIN) return drainProfile();
  const { relay, workDir } = await startRelay();
  const admin = adminClient(relay.url, ADMIN_TOKEN);
  const receivers = [await startTarget("receiver-a"), await startTarget("receiver-b")];
  const hanging = await startTarget("hanging", { kind: "hang" });
  await admin.call("PUT", "/sources/profile", { auth: { type: "hmac", secretEnv: "PROFILE_HMAC" }, allowedIps: ["127.0.0.1"] });
  for (const r of receivers) await admin.call("PUT", `/targets/${r.name}`, { url: r.url });
  if (HANG) await admin.call("PUT", "/targets/hanging", { url: hanging.url, timeoutMs: 5_000 });
  // Warm up, so the profile shows steady state rather than compilation.
  for (let i = 0; i < 50; i++) await postUpload(relay.url, "profile", `warm-${i}`, HMAC_SECRET);
  await sleep(2_000);

  const profiler = await startProfile(relay.inspectorPort);
  const t0 = performance.now();
  const posts: Promise<unknown>[] = [];
  const ids: string[] = [];
  const sentAt = new Map<string, number>();
  const ingestMs: number[] = [];
  for (let i = 0; i < RATE * SECONDS; i++) {
    const wait = t0 + (i * 1000) / RATE - performance.now();
    if (wait > 1) await sleep(wait);
    const id = `p-${i}`;
    ids.push(id);
    const sent = performance.now();
    sentAt.set(id, Date.now());
    posts.push(postUpload(relay.url, "profile", id, HMAC_SECRET).then(() => void ingestMs.push(performance.now() - sent)));
  }
  await Promise.all(posts);
  await waitFor("every event at both receivers", () => receivers.every((t) => ids.every((id) => t.delivered().has(id))), {
    timeoutMs: 60_000,
    intervalMs: 200,
  });
  await profiler.stop(`${RATE} events/s for ${SECONDS} s, ${HANG ? "three targets" : "two targets (no-hang)"}`, performance.now() - t0);
  await sleep(1_000);
  stages(join(workDir, "state"), ids, sentAt, ingestMs, receivers[0]!);
  await relay.stop();
  await Promise.all([...receivers, hanging].map((t) => t.close()));
}

/** Where each event's time went, from the databases: ingest, ledger → outbox hand-off, outbox wait, the attempt. */
function stages(
  persistTo: string,
  ids: string[],
  sentAt: Map<string, number>,
  ingestMs: number[],
  receiver: { name: string; arrivals: { webhookId?: string | null; at: number }[] },
): void {
  const ledgerFile = findDo(persistTo, "Ledger", "SELECT 1 FROM deliveries WHERE delivery_id = 'p-0'");
  const outboxFile = findDo(persistTo, "Outbox", `SELECT 1 FROM meta WHERE target_id = '${receiver.name}'`);
  if (!ledgerFile || !outboxFile) return void console.log("stages: databases not found");
  const q = (file: string, sql: string) => {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      return db.prepare(sql).all() as Record<string, number | string>[];
    } finally {
      db.close();
    }
  };
  const wanted = new Set(ids);
  const handed = new Map(
    q(
      ledgerFile,
      `SELECT h.delivery_id AS id, d.received_at AS r, h.handed_at AS h FROM handoffs h JOIN deliveries d USING (delivery_id) WHERE h.target_id = '${receiver.name}'`,
    )
      .filter((r) => wanted.has(String(r.id)))
      .map((r) => [String(r.id), { received: Number(r.r), handed: Number(r.h) }]),
  );
  const out = new Map(
    q(
      outboxFile,
      // The first attempt's start: an attempts row, or (a first-try success writes none) the attempt kept in the dispatch's row (src/outbox/transitions.ts IN_ROW).
      `SELECT d.delivery_id AS id, d.enqueued_at AS e, COALESCE((SELECT MIN(a.started_at) FROM attempts a WHERE a.seq = d.seq), json_extract(d.attempt, '$.startedAt')) AS s,
         d.delivered_at AS done FROM dispatches d WHERE d.state = 'delivered'`,
    )
      .filter((r) => wanted.has(String(r.id)))
      .map((r) => [String(r.id), { enqueued: Number(r.e), started: Number(r.s), delivered: Number(r.done) }]),
  );
  const series = { sendToRecorded: [] as number[], recordedToHanded: [] as number[], handedToAttempt: [] as number[], attempt: [] as number[] };
  for (const id of ids) {
    const h = handed.get(id);
    const o = out.get(id);
    const sent = sentAt.get(id);
    if (!h || !o || sent === undefined) continue;
    series.sendToRecorded.push(h.received - sent);
    series.recordedToHanded.push(h.handed - h.received);
    series.handedToAttempt.push(o.started - h.handed);
    series.attempt.push(o.delivered - o.started);
  }
  const fmt = (xs: number[]) => `p50 ${percentile(xs, 50)} ms, p99 ${percentile(xs, 99)} ms`;
  console.log(`\nstages of ${receiver.name}'s events (${series.attempt.length} events; clocks: the sender's and the runtime's Date.now):`);
  console.log(`  ingest request (client):              ${fmt(ingestMs.map(Math.round))}`);
  console.log(`  send → received_at (ledger):          ${fmt(series.sendToRecorded)}`);
  console.log(`  received_at → handed to the outbox:   ${fmt(series.recordedToHanded)}`);
  console.log(`  handed → first attempt started:       ${fmt(series.handedToAttempt)}`);
  console.log(`  first attempt started → delivered:    ${fmt(series.attempt)}`);
}

runAndExit(main);
