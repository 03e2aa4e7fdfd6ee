/**
 * One-command local demo: `npm run demo [-- --keep]`. Starts two EDC stand-ins on 127.0.0.1
 * (one healthy, one failing with 503 for its first seconds), a fake CentrePoint V3 API on
 * 127.0.0.1, the relay under `wrangler dev` with throw-away storage and secrets, configures a
 * source (with its CentrePoint API client) and both targets through the admin API, and runs the
 * simulator; every send CentrePoint makes is logged in the fake's delivery history. Then a stretch
 * of deliveries signed with a key the relay does not have is refused (401, and again on
 * CentrePoint's retry), and a reconciliation backfills them from the history. Waits (bounded)
 * until both receivers hold every CentrePoint delivery. Exits 0 only if each receiver's distinct
 * webhook-ids equal CentrePoint's delivery ids, the refused ones backfilled exactly once.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { historyLoggingSend, startFakeCentrePoint } from "../harness/fake-centrepoint-server.ts";
import type { FakeCentrePoint } from "../harness/fake-centrepoint.ts";
import { createSender, type SendFn } from "../harness/http/sender.ts";
import { createRng } from "../harness/prng.ts";
import { freePort, signalGroup } from "../harness/process/groups.ts";
import { PROJECT_ROOT, WRANGLER_JS, wranglerDevArgs, wranglerEnv } from "../harness/process/wrangler-dev.ts";
import { runSimulation } from "../harness/simulator/run.ts";
import { formatSummary, type Summary } from "../harness/simulator/summary.ts";
import { type Receiver, startReceiver } from "../harness/targets/receiver.ts";
import { checkTally, type TallyCheck } from "../harness/targets/tally.ts";

const SOURCE_ID = "demo-study";
/** The study and webhook registration the fake CentrePoint holds for the demo source. */
const STUDY_ID = 189;
const WEBHOOK_ID = 74;
/** Deliveries CentrePoint signs with a key the relay does not have, in the reconciliation chapter. */
const REFUSED_STRETCH = 10;
/** edc-flaky answers 503 to this many requests, then recovers: the demo shows retries, backoff and the breaker. */
const FLAKY_FAILURES = 8;
/** The demo targets' breaker: opens after 5 failures like the default, but probes after 2 s instead of 60 s. */
const DEMO_BREAKER = { threshold: 5, cooldownMs: 2_000, maxCooldownMs: 4_000 };
const READY_TIMEOUT_MS = 90_000;
const DELIVERY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 5_000;
const HEALTH_POLL_MS = 5_000;
/** Worker log lines worth echoing while the demo runs (the rest go to the log file only). */
const RELAY_LINES_SHOWN = /"level":"(warn|error)"|\[wrangler:(warn|error)\]/;

const started = Date.now();
/** Prints one line tagged with the component and the seconds since start. */
function say(tag: string, line: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`+${t}s ${`[${tag}]`.padEnd(14)} ${line}\n`);
}

// Everything started is stopped on every path: normal end, error, SIGINT/SIGTERM.
const closers: (() => Promise<void>)[] = [];
let closing: Promise<void> | undefined;
let relay: ChildProcess | undefined;
let keepWaiter: (() => void) | undefined;

/** Runs the registered closers once, newest first. */
function closeAll(): Promise<void> {
  closing ??= (async () => {
    for (const close of closers.reverse()) await close().catch((e: unknown) => say("demo", `cleanup: ${(e as Error).message}`));
  })();
  return closing;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (keepWaiter) return keepWaiter();
    say("demo", `${signal}: stopping everything`);
    void closeAll().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}
// Last resort if the process exits without the closers having run (the group includes workerd).
process.on("exit", () => {
  if (relay?.pid !== undefined && relay.exitCode === null && relay.signalCode === null) signalGroup(relay.pid, "SIGKILL");
});

/** Starts `wrangler dev` in its own process group with the same Node as this script; output goes to `logFile`. */
function startRelay(port: number, inspectorPort: number, stateDir: string, logFile: string, vars: Record<string, string>): ChildProcess {
  const args = wranglerDevArgs({ port, inspectorPort, persistTo: stateDir, vars });
  const child = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: wranglerEnv(),
  });
  const file = createWriteStream(logFile);
  for (const stream of [child.stdout, child.stderr]) {
    stream!.pipe(file, { end: false });
    createInterface({ input: stream! }).on("line", (line) => {
      if (RELAY_LINES_SHOWN.test(line)) say("relay", line.slice(0, 220));
    });
  }
  child.on("exit", () => file.end());
  return child;
}

/** Stops the relay's process group: SIGTERM, then SIGKILL after a bounded wait. */
async function stopRelay(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  signalGroup(child.pid, "SIGTERM");
  const result = await Promise.race([exited.then(() => "exited"), delay(STOP_TIMEOUT_MS, "timeout")]);
  // workerd may outlive wrangler: the group is signalled again either way.
  signalGroup(child.pid, "SIGKILL");
  if (result === "timeout") await Promise.race([exited, delay(STOP_TIMEOUT_MS)]);
}

/** Polls `GET /healthz` until it answers 200; fails if wrangler exits or the deadline passes. */
async function waitForRelay(base: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`wrangler dev exited (${child.exitCode ?? child.signalCode}):\n${await tail(logFile, 30)}`);
    const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
    if (res?.ok) return;
    await delay(300);
  }
  throw new Error(`relay not ready within ${READY_TIMEOUT_MS / 1000} s:\n${await tail(logFile, 30)}`);
}

/** The last `n` lines of a file. */
async function tail(file: string, n: number): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

/** One admin API call; returns the status and the parsed JSON body (if any). */
async function admin(base: string, token: string, method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}/admin${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, json };
}

/** PUTs one configuration document; throws with the relay's field errors if it is refused. */
async function putConfig(base: string, token: string, route: string, doc: unknown): Promise<void> {
  const { status, json } = await admin(base, token, "PUT", route, doc);
  if (status !== 200 && status !== 201) throw new Error(`PUT /admin${route} answered ${status}: ${JSON.stringify(json)}`);
  say("demo", `configured ${route}`);
}

/** Polls `GET /admin/targets/:id/health` (when the relay has it) and prints a line per target when it changes. */
function startHealthPolling(base: string, token: string, targets: string[]): () => void {
  const available = new Set(targets);
  const last = new Map<string, string>();
  const poll = async () => {
    for (const id of [...available]) {
      const res = await admin(base, token, "GET", `/targets/${id}/health`).catch(() => undefined);
      if (!res || res.status === 404) {
        available.delete(id);
        continue;
      }
      const line = describeHealth(res.json);
      if (last.get(id) !== line) say("health", `${id}: ${line}`);
      last.set(id, line);
    }
  };
  const timer = setInterval(() => void poll(), HEALTH_POLL_MS);
  return () => clearInterval(timer);
}

/** One line from a target health document: counts per state, breaker, last error (raw JSON if the shape is unknown). */
function describeHealth(json: unknown): string {
  const h = json as { counts?: Record<string, number>; breaker?: { status?: string; consecutiveFailures?: number }; lastError?: { message?: string } | null };
  if (typeof h !== "object" || h === null || typeof h.counts !== "object") return JSON.stringify(json).slice(0, 200);
  const counts = Object.entries(h.counts)
    .map(([state, n]) => `${state} ${n}`)
    .join(", ");
  const breaker = h.breaker ? `; breaker ${h.breaker.status} (${h.breaker.consecutiveFailures ?? 0} consecutive failures)` : "";
  const lastError = h.lastError?.message ? `; last error: ${h.lastError.message.slice(0, 80)}` : "";
  return `${counts}${breaker}${lastError}`;
}

/** Waits until every receiver holds every accepted id, or the deadline passes. */
async function waitForDeliveries(receivers: Receiver[], acceptedIds: string[]): Promise<boolean> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  let lastReport = 0;
  while (Date.now() < deadline) {
    const checks = receivers.map((r) => checkTally(acceptedIds, r.tally));
    if (checks.every((c) => c.missing.length === 0)) return true;
    if (Date.now() - lastReport >= 5_000) {
      say(
        "demo",
        `waiting (at most ${Math.ceil((deadline - Date.now()) / 1000)} s more): ${receivers.map((r, i) => `${r.name} ${checks[i]!.distinct}/${acceptedIds.length}`).join(", ")}`,
      );
      lastReport = Date.now();
    }
    await delay(250);
  }
  return false;
}

/** The final per-receiver table. */
function formatTally(receivers: Receiver[], checks: TallyCheck[]): string {
  const head = ["receiver", "expected", "distinct", "missing", "unknown", "repeats", "retried ids", "503s", "bad sig", "result"];
  const rows = receivers.map((r, i) => {
    const c = checks[i]!;
    const result = c.holds ? `exactly once by webhook-id${c.repeats ? ` (+${c.repeats} repeat${c.repeats > 1 ? "s" : ""}, at-least-once)` : ""}` : "FAILED";
    return [r.name, c.expected, c.distinct, c.missing.length, c.unknown.length, c.repeats, c.retried, r.tally.refused, r.tally.invalidSignatures, result].map(
      String,
    );
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")}`.trimEnd();
  const lines = [line(head), ...rows.map(line)];
  for (const [i, c] of checks.entries()) {
    if (c.missing.length) lines.push(`  ${receivers[i]!.name} is missing: ${c.missing.slice(0, 10).join(", ")}${c.missing.length > 10 ? ", ..." : ""}`);
    if (c.unknown.length) lines.push(`  ${receivers[i]!.name} got ids the relay never accepted: ${c.unknown.slice(0, 10).join(", ")}`);
  }
  return lines.join("\n");
}

/** Creates the demo source (HMAC, loopback allow-list, the fake CentrePoint's API client) and one target per receiver through the admin API. */
async function configureRelay(base: string, token: string, receivers: Receiver[], centrepointUrl: string): Promise<void> {
  await putConfig(base, token, `/sources/${SOURCE_ID}`, {
    description: "Demo CentrePoint study webhook (HMAC)",
    auth: { type: "hmac", secretEnv: "DEMO_HMAC_SECRET" },
    // wrangler dev sets CF-Connecting-IP to the client's address: loopback here.
    allowedIps: ["127.0.0.1", "::1"],
    // Reconciliation on demand only (everyMinutes 0): the demo runs it when the story needs it.
    centrepoint: {
      studyId: STUDY_ID,
      webhookId: WEBHOOK_ID,
      clientIdEnv: "DEMO_CP_CLIENT_ID",
      clientSecretEnv: "DEMO_CP_CLIENT_SECRET",
      apiUrl: centrepointUrl,
      authUrl: centrepointUrl,
      reconcile: { everyMinutes: 0, lookbackHours: 24 },
    },
  });
  for (const r of receivers) {
    await putConfig(base, token, `/targets/${r.name}`, {
      url: `${r.url}/${r.name}`,
      description: `Demo receiver ${r.name}`,
      signing: { secretEnv: "DEMO_SIGNING_SECRET" },
      timeoutMs: 5_000,
      retry: { baseDelayMs: 1_000, maxDelayMs: 5_000 },
      breaker: DEMO_BREAKER,
    });
  }
}

/**
 * Runs the simulator in-process: handshake, 40 deliveries for 3 subjects, 10 % duplicates, 10 %
 * bad signatures. Every request the relay answered 2xx is CentrePoint's and is logged in its
 * history; the bad signatures stand for forged requests, which CentrePoint's history never shows.
 */
async function simulate(url: string, secret: string, centrepoint: FakeCentrePoint): Promise<Summary> {
  say("simulate", `sending a handshake and 40 deliveries to ${url}`);
  const sender = createSender({ concurrency: 4, timeoutMs: 10_000 });
  const send = historyLoggingSend(centrepoint, sender.send, { logs: (status) => status !== null && status >= 200 && status < 300 });
  try {
    const options = {
      url,
      credentials: { type: "hmac", secret } as const,
      rate: 8,
      count: 40,
      subjects: 3,
      duplicates: 0.1,
      badSignatures: 0.1,
      concurrency: 4,
      seed: randomInt(2 ** 32 - 1),
      handshake: true,
      timeoutMs: 10_000,
    };
    const summary = await runSimulation(options, { send, idRng: createRng(randomInt(2 ** 32 - 1)) });
    process.stdout.write(`\n${formatSummary(summary)}\n\n`);
    return summary;
  } finally {
    sender.close();
  }
}

/**
 * The reconciliation chapter's outage: CentrePoint signs a stretch of deliveries with a key the
 * relay does not have (the Secret Key changed in the portal, not in the relay). The relay refuses
 * each (401), CentrePoint retries each once and is refused again; its history logs every attempt.
 * Returns the refused delivery ids.
 */
async function refusedStretch(url: string, wrongSecret: string, centrepoint: FakeCentrePoint): Promise<string[]> {
  say("centrepoint", `signs the next ${REFUSED_STRETCH} deliveries with a key the relay does not have`);
  const sender = createSender({ concurrency: 2, timeoutMs: 10_000 });
  const sent: { headers: Record<string, string>; body: string; status: number | null }[] = [];
  const logged = historyLoggingSend(centrepoint, sender.send);
  const send: SendFn = async (to, headers, body) => {
    const result = await logged(to, headers, body);
    sent.push({ headers, body, status: result.ok ? result.value.status : null });
    return result;
  };
  try {
    const options = {
      url,
      credentials: { type: "hmac", secret: wrongSecret } as const,
      rate: 10,
      count: REFUSED_STRETCH,
      subjects: 2,
      duplicates: 0,
      badSignatures: 0,
      concurrency: 2,
      seed: randomInt(2 ** 32 - 1),
      handshake: false,
      timeoutMs: 10_000,
    };
    await runSimulation(options, { send, idRng: createRng(randomInt(2 ** 32 - 1)) });
    const first = [...sent];
    say("centrepoint", `the relay answered ${first.map((s) => s.status ?? "no answer").join(", ")}; CentrePoint retries each once`);
    for (const s of first) await logged(url, s.headers, s.body);
    const ids = first.map((s) => Object.entries(s.headers).find(([k]) => k.toLowerCase() === "x-actigraph-delivery")?.[1] ?? "");
    say("centrepoint", `refused again: its history now shows ${centrepoint.history().filter((h) => h.response?.responseCode === 401).length} failed sends`);
    return ids.filter((id) => id !== "");
  } finally {
    sender.close();
  }
}

/** What the reconciliation chapter saw. */
interface Reconciliation {
  /** The first run's report (JSON of POST /admin/sources/:id/reconcile), or null when it was not 200. */
  first: Record<string, unknown> | null;
  /** The second run's backfilled count, or null when it was not 200. */
  secondBackfilled: number | null;
  registrationOk: boolean;
}

/** Runs the registration check and two reconciliations through the admin API and prints what they answered. */
async function reconcile(base: string, token: string): Promise<Reconciliation> {
  const registration = await admin(base, token, "GET", `/sources/${SOURCE_ID}/registration`);
  const reg = registration.json as { ok?: boolean; problems?: { message: string }[]; notes?: string[] };
  say(
    "reconcile",
    registration.status !== 200
      ? `registration check answered ${registration.status}: ${JSON.stringify(registration.json).slice(0, 200)}`
      : reg.ok
        ? "registration check: the webhook points here, is enabled and sends every event the targets want"
        : `registration check found problems: ${(reg.problems ?? []).map((p) => p.message).join(" / ")}`,
  );
  say("reconcile", "POST /admin/sources/demo-study/reconcile: reading CentrePoint's delivery history");
  const run = await admin(base, token, "POST", `/sources/${SOURCE_ID}/reconcile`);
  const first = run.status === 200 ? (run.json as Record<string, unknown>) : null;
  if (!first) say("reconcile", `answered ${run.status}: ${JSON.stringify(run.json).slice(0, 300)}`);
  else {
    const fields = ["pages", "scanned", "matched", "backfilled", "recordedButFailedAtCentrePoint", "skipped", "errors"];
    say("reconcile", `${first.complete ? "complete" : "continues in the background"}: ${fields.map((f) => `${f} ${String(first[f])}`).join(", ")}`);
  }
  const again = await admin(base, token, "POST", `/sources/${SOURCE_ID}/reconcile`);
  const secondBackfilled = again.status === 200 ? Number((again.json as { backfilled?: number }).backfilled) : null;
  say("reconcile", `a second run over the same history backfills ${secondBackfilled ?? `nothing (it answered ${again.status})`}`);
  return { first, secondBackfilled, registrationOk: registration.status === 200 && reg.ok === true };
}

/** Prints the final tally, where to look next, and the verdict. */
function printResult(
  summary: Summary,
  receivers: Receiver[],
  checks: TallyCheck[],
  run: { pass: boolean; complete: boolean; base: string; adminToken: string; refused: string[]; backfillOk: boolean },
): void {
  process.stdout.write(
    `\nFinal tally: CentrePoint delivered ${summary.acceptedIds.length + run.refused.length} distinct deliveries: ${summary.acceptedIds.length} accepted as webhooks (the relay's ${summary.duplicate} duplicate answers and the ${summary.rejected.expected} forged requests it refused are not forwarded), ${run.refused.length} refused for a wrong key and backfilled from CentrePoint's history\n`,
  );
  process.stdout.write(`${formatTally(receivers, checks)}\n\n`);
  process.stdout.write(`Dashboard:   ${run.base}/admin/\nAdmin token: ${run.adminToken}\n`);
  const why = [
    !summary.ok && "the simulator saw unexpected responses",
    !run.backfillOk && "the reconciliation did not backfill exactly the refused deliveries once",
    !run.complete && "not every CentrePoint delivery reached both receivers in time",
    run.complete && !run.pass && summary.ok && run.backfillOk && "a receiver's ids differ from CentrePoint's delivery ids",
  ]
    .filter(Boolean)
    .join("; ");
  process.stdout.write(
    run.pass
      ? "RESULT: PASS: every CentrePoint delivery reached both receivers exactly once by webhook-id, the refused ones through reconciliation\n"
      : `RESULT: FAIL: ${why}\n`,
  );
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write("Usage: npm run demo [-- --keep]\n  --keep  leave the relay and receivers running until Ctrl-C\n");
    return 0;
  }
  const unknown = args.filter((a) => a !== "--keep");
  if (unknown.length) {
    process.stderr.write(`demo: unknown argument(s) ${unknown.join(" ")}; usage: npm run demo [-- --keep]\n`);
    return 2;
  }
  const keep = args.includes("--keep");
  if (!existsSync(WRANGLER_JS)) {
    process.stderr.write("demo: node_modules/wrangler is missing; run `npm ci` first.\n");
    return 1;
  }

  const tmp = await mkdtemp(path.join(os.tmpdir(), "centrepoint-relay-demo-"));
  closers.push(() => rm(tmp, { recursive: true, force: true }));
  const secrets = {
    ADMIN_TOKEN: `demo-${randomBytes(16).toString("hex")}`,
    ALLOW_HTTP_TARGETS: "true",
    DEMO_HMAC_SECRET: randomBytes(24).toString("base64url"),
    DEMO_SIGNING_SECRET: `whsec_${randomBytes(24).toString("base64")}`,
    DEMO_CP_CLIENT_ID: `demo-client-${randomBytes(6).toString("hex")}`,
    DEMO_CP_CLIENT_SECRET: randomBytes(24).toString("base64url"),
  };

  const receivers = [
    await startReceiver({ name: "edc-healthy", secret: secrets.DEMO_SIGNING_SECRET, failFirst: 0, log: (l) => say("edc-healthy", l) }),
    await startReceiver({ name: "edc-flaky", secret: secrets.DEMO_SIGNING_SECRET, failFirst: FLAKY_FAILURES, log: (l) => say("edc-flaky", l) }),
  ];
  for (const r of receivers) closers.push(r.close);
  say("demo", `receivers: ${receivers.map((r) => `${r.name} ${r.url}`).join(", ")} (edc-flaky answers 503 to its first ${FLAKY_FAILURES} requests)`);

  const [port, inspectorPort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${port}`;
  const centrepoint = await startFakeCentrePoint({
    clients: [{ clientId: secrets.DEMO_CP_CLIENT_ID, clientSecret: secrets.DEMO_CP_CLIENT_SECRET, scopes: ["CentrePoint"] }],
    webhooks: [{ studyId: String(STUDY_ID), webhookId: String(WEBHOOK_ID), url: `${base}/webhooks/${SOURCE_ID}` }],
    maxPageSize: 25,
    order: "shuffled",
    seed: randomInt(2 ** 31),
  });
  closers.push(centrepoint.close);
  say("demo", `fake CentrePoint V3 API (token, registration, delivery history) on ${centrepoint.url}`);

  const logFile = path.join(tmp, "wrangler.log");
  say("demo", `starting the relay: wrangler dev on ${base} (storage in ${tmp})`);
  relay = startRelay(port, inspectorPort, path.join(tmp, "state"), logFile, { ...secrets, RELAY_PUBLIC_URL: base });
  const child = relay;
  closers.push(() => stopRelay(child));
  await waitForRelay(base, child, logFile);
  say("demo", "relay ready");

  await configureRelay(base, secrets.ADMIN_TOKEN, receivers, centrepoint.url);
  const stopHealth = startHealthPolling(
    base,
    secrets.ADMIN_TOKEN,
    receivers.map((r) => r.name),
  );
  closers.push(async () => stopHealth());

  const ingress = `${base}/webhooks/${SOURCE_ID}`;
  const summary = await simulate(ingress, secrets.DEMO_HMAC_SECRET, centrepoint.fake);

  process.stdout.write("\nReconciliation: deliveries the relay refused, recovered from CentrePoint's delivery history\n\n");
  const refused = await refusedStretch(ingress, randomBytes(24).toString("base64url"), centrepoint.fake);
  const reconciliation = await reconcile(base, secrets.ADMIN_TOKEN);
  const backfilledIds = (reconciliation.first?.backfilledIds as string[] | undefined) ?? [];
  const backfillOk =
    reconciliation.first?.complete === true &&
    reconciliation.first.backfilled === refused.length &&
    [...backfilledIds].sort().join() === [...refused].sort().join() &&
    reconciliation.secondBackfilled === 0 &&
    reconciliation.registrationOk;

  const expected = [...summary.acceptedIds, ...refused];
  say("demo", `waiting for both receivers to hold all ${expected.length} CentrePoint deliveries (at most ${DELIVERY_TIMEOUT_MS / 1000} s)`);
  const complete = summary.acceptedIds.length > 0 && (await waitForDeliveries(receivers, expected));
  // A short grace period so late repeats (at-least-once) are counted and shown.
  if (complete) await delay(1_500);
  stopHealth();

  const checks = receivers.map((r) => checkTally(expected, r.tally));
  const pass = summary.ok && backfillOk && complete && checks.every((c) => c.holds);
  printResult(summary, receivers, checks, { pass, complete, base, adminToken: secrets.ADMIN_TOKEN, refused, backfillOk });
  if (!pass) process.stdout.write(`\nLast relay log lines:\n${await tail(logFile, 25)}\n`);

  if (keep) {
    process.stdout.write("\n--keep: the relay and the receivers stay up; press Ctrl-C to stop.\n");
    await new Promise<void>((resolve) => (keepWaiter = resolve));
  }
  return pass ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  say("demo", `error: ${(e as Error).message}`);
} finally {
  if (closers.length > 0) say("demo", "stopping the relay, the fake CentrePoint and the receivers, removing the temp dir");
  await closeAll();
}
process.exit(code);
