/**
 * One-command local demo: `npm run demo [-- --keep]`. Starts two EDC stand-ins on 127.0.0.1
 * (one healthy, one failing with 503 for its first seconds), a fake CentrePoint V3 API on
 * 127.0.0.1, the relay under `wrangler dev` with throw-away storage and secrets, configures a
 * source (with its CentrePoint API client) and both targets through the admin API, and runs the
 * simulator; every send CentrePoint makes is logged in the fake's delivery history. Then a stretch
 * of deliveries signed with a key the relay does not have is refused (401, and again on
 * CentrePoint's retry), and a reconciliation backfills them from the history. Then the PULL chapter:
 * a third receiver wants its events enriched, an upload is enriched with its subject and device, a
 * raw_processing event makes the relay request raw data, the fake completes it and sends
 * data_retrieval_complete (its webhook pump), and the demo GETs the relay link of a data file and
 * checks the 302 (never following it: the fake's download URLs are on a host that does not resolve).
 * Waits (bounded) until both receivers hold every CentrePoint delivery. Exits 0 only if each
 * receiver's distinct webhook-ids equal CentrePoint's delivery ids, the refused ones backfilled
 * exactly once, the PULL chapter saw what it should, and the people chapter (after the tally: its
 * replay is one more copy) saw a viewer refused, an operator's replay with its reason in the audit
 * trail, and the trail's export verified offline, and the alerts chapter saw edc-flaky's dead letter
 * open a critical issue, its signed notification reach the pager (the alert channel demo-pager's
 * local receiver, which also prints the issues the earlier chapters opened), an acknowledgement,
 * and the issue resolve itself after the replay.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { centrepointHeaders } from "../harness/centrepoint/headers.ts";
import { type FakeAccessServer, startFakeAccess } from "../harness/fake-access.ts";
import { signBody } from "../harness/centrepoint/signing.ts";
import { type FakeCentrePointServer, historyLoggingSend, startFakeCentrePoint } from "../harness/fake-centrepoint-server.ts";
import type { FakeCentrePoint } from "../harness/fake-centrepoint.ts";
import { type AdminClient, adminClient, createSender, http, type SendFn } from "../harness/http/client.ts";
import { createRng } from "../harness/prng.ts";
import { freePort, makeTempDir } from "../harness/process/groups.ts";
import { type DevServer, PROJECT_ROOT, startDev, WRANGLER_JS } from "../harness/process/wrangler-dev.ts";
import { runSimulation } from "../harness/simulator/run.ts";
import { formatSummary, type Summary } from "../harness/simulator/summary.ts";
import { failFirst, startTarget, type Target } from "../harness/targets/controllable-target.ts";
import { checkTally, type TallyCheck } from "../harness/targets/tally.ts";
import { waitFor } from "../harness/wait.ts";
import { docExample } from "../harness/targets/doc-examples.ts";
import { EXAMPLE_REDCAP_FIELDS } from "../harness/targets/redcap.ts";
import { uploadBody } from "../harness/centrepoint/payloads.ts";
import { startFhirReceiver, startRedcapReceiver } from "../harness/targets/system-receivers.ts";

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
const HEALTH_POLL_MS = 5_000;
/** Worker log lines worth echoing while the demo runs (the rest go to the log file only). */
const RELAY_LINES_SHOWN = /"level":"(warn|error)"|\[wrangler:(warn|error)\]/;

/** wrangler's warning lines carry terminal colours; the demo's own lines carry none. */
const stripAnsi = (line: string) => line.replace(/\x1b\[[0-9;]*m/g, "");

const started = Date.now();
/** Prints one line tagged with the component and the seconds since start. */
function say(tag: string, line: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`+${t}s ${`[${tag}]`.padEnd(14)} ${line}\n`);
}

// Everything started in-process is closed on every path (normal end, error); the relay's process
// group and the temp dir are the harness's (harness/process/groups.ts): removed on exit, on
// SIGINT/SIGTERM and if this process dies.
const closers: (() => Promise<void>)[] = [];

/** Runs the registered closers once, newest first. */
async function closeAll(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close().catch((e: unknown) => say("demo", `cleanup: ${(e as Error).message}`));
}

/** The last `n` lines of the relay's output. */
function tail(relay: DevServer, n: number): string {
  return relay.output().trimEnd().split("\n").slice(-n).join("\n");
}

/** PUTs one configuration document; throws with the relay's field errors if it is refused. */
async function putConfig(admin: AdminClient, route: string, doc: unknown): Promise<void> {
  const { status, text } = await admin.call("PUT", route, doc);
  if (status !== 200 && status !== 201) throw new Error(`PUT /admin${route} answered ${status}: ${text}`);
  say("demo", `configured ${route}`);
}

/** Polls `GET /admin/targets/:id/health` (when the relay has it) and prints a line per target when it changes. */
function startHealthPolling(admin: AdminClient, targets: string[]): () => void {
  const available = new Set(targets);
  const last = new Map<string, string>();
  const poll = async () => {
    for (const id of [...available]) {
      const res = await admin.call("GET", `/targets/${id}/health`).catch(() => undefined);
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

/** Waits until every receiver holds every accepted id; false (with what was missing printed) at the deadline. */
async function waitForDeliveries(receivers: Target[], acceptedIds: string[]): Promise<boolean> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  let lastReport = Date.now();
  const progress = () => receivers.map((r) => `${r.name} ${checkTally(acceptedIds, r.tally).distinct}/${acceptedIds.length}`).join(", ");
  return waitFor(
    `every CentrePoint delivery at ${receivers.map((r) => r.name).join(" and ")}`,
    () => {
      if (Date.now() - lastReport >= 5_000) {
        say("demo", `waiting (at most ${Math.ceil((deadline - Date.now()) / 1000)} s more): ${progress()}`);
        lastReport = Date.now();
      }
      return receivers.every((r) => checkTally(acceptedIds, r.tally).missing.length === 0);
    },
    { timeoutMs: DELIVERY_TIMEOUT_MS, intervalMs: 250, detail: () => ` (${progress()})` },
  ).then(
    () => true,
    (e: Error) => (say("demo", e.message), false),
  );
}

/** Waits until the receivers' outboxes have nothing pending or in flight, so late repeats (at-least-once) are counted too. */
async function waitForIdleOutboxes(admin: AdminClient, targets: string[]): Promise<void> {
  await waitFor(
    `nothing pending or in flight for ${targets.join(" and ")}`,
    async () => {
      for (const id of targets) {
        const h = await admin.call("GET", `/targets/${id}/health`);
        if (h.status !== 200 || h.json.counts.pending !== 0 || h.json.counts.delivering !== 0) return false;
      }
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 250 },
  );
}

/** The final per-receiver table. */
function formatTally(receivers: Target[], checks: TallyCheck[]): string {
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

/** The demo source's document (HMAC, loopback allow-list, the fake CentrePoint's API client), with automatic raw-data requests or not. */
function sourceDocument(centrepointUrl: string, autoRequest: boolean): Record<string, unknown> {
  return {
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
      ...(autoRequest && { autoRequest: { fileFormat: "avro" } }),
    },
  };
}

/** Creates the demo source and one target per receiver through the admin API. */
async function configureRelay(admin: AdminClient, receivers: Target[], centrepointUrl: string): Promise<void> {
  await putConfig(admin, `/sources/${SOURCE_ID}`, sourceDocument(centrepointUrl, false));
  for (const r of receivers) {
    await putConfig(admin, `/targets/${r.name}`, {
      url: r.url,
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
async function reconcile(admin: AdminClient): Promise<Reconciliation> {
  const registration = await admin.call("GET", `/sources/${SOURCE_ID}/registration`);
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
  const run = await admin.call("POST", `/sources/${SOURCE_ID}/reconcile`);
  const first = run.status === 200 ? (run.json as Record<string, unknown>) : null;
  if (!first) say("reconcile", `answered ${run.status}: ${JSON.stringify(run.json).slice(0, 300)}`);
  else {
    const fields = ["pages", "scanned", "matched", "backfilled", "recordedButFailedAtCentrePoint", "skipped", "errors"];
    say("reconcile", `${first.complete ? "complete" : "continues in the background"}: ${fields.map((f) => `${f} ${String(first[f])}`).join(", ")}`);
  }
  const again = await admin.call("POST", `/sources/${SOURCE_ID}/reconcile`);
  const secondBackfilled = again.status === 200 ? Number((again.json as { backfilled?: number }).backfilled) : null;
  say("reconcile", `a second run over the same history backfills ${secondBackfilled ?? `nothing (it answered ${again.status})`}`);
  return { first, secondBackfilled, registrationOk: registration.status === 200 && reg.ok === true };
}

/** What the PULL chapter saw: whether every check held, and the CentrePoint deliveries it made (for the tally). */
interface PullChapter {
  ok: boolean;
  deliveryIds: string[];
}

/** Sends one CentrePoint delivery, signed as CentrePoint signs, logged in the fake's history; returns its delivery id. */
async function sendAsCentrePoint(send: SendFn, url: string, secret: string, event: string, body: string): Promise<string> {
  const id = randomUUID();
  const result = await send(url, centrepointHeaders({ event, deliveryId: id, webhookId: String(WEBHOOK_ID), signature: signBody(secret, body) }), body);
  if (!result.ok || result.value.status !== 200) throw new Error(`the relay answered ${result.ok ? result.value.status : result.error} to a ${event}`);
  return id;
}

/** Waits (bounded) until `found()` is something and returns it; at the deadline, prints what it waited for and returns undefined (the chapter's check then fails). */
async function waitForEvent<T>(what: string, found: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  return waitFor(what, found, { timeoutMs, intervalMs: 250 }).catch((e: Error) => (say("pull", `FAIL ${e.message}`), undefined));
}

/**
 * The PULL chapter (docs/pull.md): edc-enriched asks for subject, upload and data files; an upload
 * arrives and goes out enriched; the source gets autoRequest, a raw_processing event makes the relay
 * request that range, the fake completes it and its pump sends data_retrieval_complete; the event
 * names its trigger and lists the files with relay links; the demo GETs one and checks the 302
 * without following it.
 */
async function pullChapter(
  base: string,
  admin: AdminClient,
  ingress: string,
  secret: string,
  centrepoint: FakeCentrePointServer,
  enriched: { receiver: Target; events: Record<string, any>[] },
): Promise<PullChapter> {
  await putConfig(admin, `/sources/${SOURCE_ID}`, sourceDocument(centrepoint.url, true));
  await putConfig(admin, `/targets/${enriched.receiver.name}`, {
    url: enriched.receiver.url,
    description: "Demo receiver that wants its events enriched",
    events: ["upload.completed", "data_retrieval.completed"],
    enrich: ["subject", "upload", "datafiles"],
    enrichDeadlineMs: 30_000,
    signing: { secretEnv: "DEMO_SIGNING_SECRET" },
    timeoutMs: 5_000,
    retry: { baseDelayMs: 1_000, maxDelayMs: 5_000 },
  });
  const sender = createSender({ concurrency: 1, timeoutMs: 10_000 });
  const send = historyLoggingSend(centrepoint.fake, sender.send);
  const pump = centrepoint.startWebhookPump({ relayUrl: ingress, secret, intervalMs: 500, maxTicks: 240 });
  const checks: [string, boolean][] = [];
  const check = (what: string, holds: boolean) => {
    checks.push([what, holds]);
    say("pull", `${holds ? "ok  " : "FAIL"} ${what}`);
  };
  try {
    const subject = 2358;
    const upload = await sendAsCentrePoint(
      send,
      ingress,
      secret,
      "upload",
      JSON.stringify({ status: "completed", uploadId: "362288", studyId: String(STUDY_ID), subjectId: String(subject) }),
    );
    say("centrepoint", `upload.completed ${upload} for subject ${subject}: a webhook that names ids only`);
    const enrichedUpload = await waitForEvent(`the upload ${upload} at edc-enriched`, () => enriched.events.find((e) => e.id === upload), 30_000);
    const facts = enrichedUpload?.data?.enrichment;
    say("pull", `edc-enriched got it with data.enrichment: ${JSON.stringify(facts ?? null).slice(0, 260)}`);
    check("the upload arrived enriched with its subject and device (status complete)", facts?.status === "complete" && !!facts.subject && !!facts.upload);
    check("no date of birth, gender, weight or height in it", !/"(dob|gender|weight|height)"/.test(JSON.stringify(enrichedUpload ?? {})));

    const max = Date.now() - 60_000;
    const raw = await sendAsCentrePoint(
      send,
      ingress,
      secret,
      "raw_processing_complete",
      JSON.stringify({
        study_id: STUDY_ID,
        subject_id: subject,
        subject_identifier: `SUBJ-${subject}`,
        monitor_serial: "TAS1F39160337",
        created_at_utc: new Date(max).toISOString().replace(/\.\d{3}Z$/, "Z"),
        min_event_timestamp: new Date(max - 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z"),
        max_event_timestamp: new Date(max).toISOString().replace(/\.\d{3}Z$/, "Z"),
        status: "Completed",
        error_message: null,
      }),
    );
    say("centrepoint", `raw_processing.completed ${raw}: the relay requests that hour of raw data (autoRequest avro)`);
    const completion = await waitForEvent(
      "a data_retrieval.completed event at edc-enriched",
      () => enriched.events.find((e) => e.type === "com.actigraph.centrepoint.data_retrieval.completed"),
      45_000,
    );
    const made = centrepoint.fake.rawRequests();
    check("the relay made one raw-data request for exactly the event's range", made.length === 1 && made[0]!.subjectId === subject);
    say("centrepoint", `the request completed; the pump sent data_retrieval_complete ${completion?.id ?? "(none arrived)"}`);
    check("the completion names its triggering delivery (triggerdelivery)", completion?.triggerdelivery === raw);
    const files = (completion?.data?.enrichment?.dataFiles ?? []) as { fileName: string; link: string | null; linkExpiresAt: string }[];
    check("its data files carry relay links on RELAY_PUBLIC_URL", files.length > 0 && files.every((f) => f.link?.startsWith(`${base}/files/${SOURCE_ID}/`)));
    const link = files[0]?.link;
    if (link) {
      say("pull", `GET ${link.replace(/sig=[^&]+/, "sig=…")} (valid until ${files[0]!.linkExpiresAt})`);
      // node:http follows no redirect.
      const res = await http(link, { timeoutMs: 10_000 });
      const location = String(res.headers.location ?? "");
      // The fake's download URLs are on a host that does not resolve: the Location is checked, never fetched.
      check(
        `the relay answered ${res.status} to a fresh CentrePoint URL on ${hostOf(location)}`,
        res.status === 302 && hostOf(location) === "blob.fake.invalid",
      );
      const audit = await admin.call("GET", `/sources/${SOURCE_ID}/downloads`);
      const rows = (audit.json as { items?: { targetId: string; fileId: string; clientIp: string | null }[] }).items ?? [];
      say("pull", `the download is in the source's audit log: ${JSON.stringify(rows[0] ?? null)}`);
      check("the download was audited (target, file, address)", rows.length === 1 && rows[0]!.targetId === enriched.receiver.name);
    }
    const pumped = pump.sends().filter((p) => p.status === 200);
    return { ok: checks.every(([, holds]) => holds), deliveryIds: [upload, raw, ...pumped.map((p) => p.deliveryId)] };
  } finally {
    pump.stop();
    sender.close();
  }
}

/** POSTs to the admin API as a person signed in through the local Access stand-in. */
function asPerson(base: string, access: FakeAccessServer) {
  return async (email: string, p: string, body: unknown, headers: Record<string, string> = {}) =>
    http(`${base}/admin${p}`, {
      method: "POST",
      headers: { "cf-access-jwt-assertion": await access.mint({ email }), "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
}

/**
 * The people chapter (docs/identity.md, docs/audit.md): two people signed in through a local
 * stand-in for Cloudflare Access, a viewer whose replay is refused and an operator who replays with
 * a reason; the audit trail shows them, and its export verifies offline. True when all of it held.
 */
async function peopleChapter(base: string, admin: AdminClient, access: FakeAccessServer, deliveryId: string, target: string, tmp: string): Promise<boolean> {
  await putConfig(admin, "/operators", { roles: { "vera@site.example": "viewer", "otto@site.example": "operator" } });
  const as = asPerson(base, access);
  const replayPath = `/deliveries/${SOURCE_ID}/${encodeURIComponent(deliveryId)}/replay`;
  const refused = await as("vera@site.example", replayPath, { target });
  say("people", `vera@site.example (viewer) asks to replay ${deliveryId} to ${target}: ${refused.status} ${refused.text.slice(0, 160)}`);
  const done = await as("otto@site.example", replayPath, { target }, { "x-audit-reason": "the EDC lost this record in its restore" });
  say("people", `otto@site.example (operator) replays it, with a reason: ${done.status}`);
  const trail = await admin.call("GET", "/audit?limit=6");
  const items = (trail.json as { items?: { at: string; actor: string; role: string; action: string; reason: string | null }[] }).items ?? [];
  for (const e of items) say("audit", `${e.at} ${e.actor} (${e.role}) ${e.action}${e.reason ? `: ${e.reason}` : ""}`);
  const exported = await admin.call("GET", "/audit/export");
  const file = path.join(tmp, "audit-export.ndjson");
  await writeFile(file, exported.text);
  const verify = spawnSync(process.execPath, [path.join(PROJECT_ROOT, "scripts", "verify-archive.ts"), file], { encoding: "utf8", timeout: 60_000 });
  const last = `${verify.stdout ?? ""}${verify.stderr ?? ""}`.trim().split("\n").at(-1) ?? "";
  say("audit", `npm run verify-archive -- ${file}: exit ${verify.status}; ${last.slice(0, 200)}`);
  return (
    refused.status === 403 && done.status === 200 && items.some((e) => e.actor === "otto@site.example" && e.action === "delivery.replay") && verify.status === 0
  );
}

/** A notification as the pager received it (docs/schemas/alert-notification.schema.json). */
interface Notification {
  type: string;
  timestamp: string;
  data: { issueId: string; condition: string; severity: string; object: Record<string, string>; summary: string; count: number; url: string };
}

/** One line for a notification: its type, the issue, what it is about, and the summary. */
function describeNotification(n: Notification): string {
  const [kind, id] = Object.entries(n.data?.object ?? {})[0] ?? ["?", "?"];
  return `${n.type} ${n.data?.issueId} ${n.data?.severity} ${n.data?.condition} on ${kind}:${id}: ${String(n.data?.summary).slice(0, 120)}`;
}

/**
 * The alerts chapter (docs/alerting.md): edc-flaky goes down again, with its retries capped at
 * three attempts the next event goes dead for it, and the relay opens a critical dead_letters issue
 * at once; the pager (a local receiver behind the webhook channel `demo-pager`) gets issue.opened,
 * signed. An operator acknowledges it, edc-flaky comes back, the operator replays its dead letters
 * with a reason, and the one-minute evaluation (run on demand through wrangler's --test-scheduled
 * endpoint) finds no dead dispatch: the issue resolves itself and the pager gets issue.resolved.
 * True when every step held.
 */
async function alertsChapter(
  base: string,
  admin: AdminClient,
  access: FakeAccessServer,
  run: { flaky: Target; pager: Target; notifications: Notification[]; ingress: string; secret: string; centrepoint: FakeCentrePoint },
): Promise<boolean> {
  const { flaky, pager, notifications } = run;
  const checks: [string, boolean][] = [];
  const check = (what: string, holds: boolean) => {
    checks.push([what, holds]);
    say("alerts", `${holds ? "ok  " : "FAIL"} ${what}`);
  };
  const wait = <T>(what: string, found: () => T | undefined, timeoutMs = 30_000) =>
    waitFor(what, found, { timeoutMs, intervalMs: 250 }).catch((e: Error) => (say("alerts", `FAIL ${e.message}`), undefined));
  const about = (type: string) => (n: Notification) => n.type === type && n.data?.condition === "dead_letters" && n.data.object?.target === flaky.name;

  flaky.setBehaviour({ kind: "status", status: 503, note: "second outage" });
  await putConfig(admin, `/targets/${flaky.name}`, {
    url: flaky.url,
    description: "Demo receiver that fails for a while (alerts chapter: retries capped at 3 attempts)",
    signing: { secretEnv: "DEMO_SIGNING_SECRET" },
    timeoutMs: 5_000,
    retry: { baseDelayMs: 500, maxDelayMs: 1_000, maxAttempts: 3 },
    breaker: DEMO_BREAKER,
  });
  say("alerts", `${flaky.name} is down again (503) and gives up after 3 attempts: the next event goes dead for it`);
  const sender = createSender({ concurrency: 1, timeoutMs: 10_000 });
  let deliveryId: string;
  try {
    const body = uploadBody({ status: "started", uploadId: "362301", subjectId: "2358", studyId: String(STUDY_ID) });
    deliveryId = await sendAsCentrePoint(historyLoggingSend(run.centrepoint, sender.send), run.ingress, run.secret, "upload", body);
  } finally {
    sender.close();
  }
  say("centrepoint", `upload.started ${deliveryId}`);
  const opened = await wait("issue.opened for dead_letters on edc-flaky at the pager", () => notifications.find(about("issue.opened")));
  check("a critical dead_letters issue opened at once and its notification reached the pager, signed", opened?.data.severity === "critical");
  const issueId = opened?.data.issueId ?? "";
  const listed = await admin.call("GET", `/issues?object=target:${flaky.name}`);
  const listedItems = (listed.json as { items?: { issueId: string; state: string; count: number; url: string }[] }).items ?? [];
  for (const i of listedItems) say("alerts", `GET /admin/issues?object=target:${flaky.name}: ${i.issueId} ${i.state}, count ${i.count}, explained at ${i.url}`);
  check(
    `the admin API lists ${issueId || "it"} as open`,
    listedItems.some((i) => i.issueId === issueId && i.state === "open"),
  );

  const as = asPerson(base, access);
  const ack = await as("otto@site.example", `/issues/${issueId}/acknowledge`, { note: "EDC team paged; replaying once edc-flaky is back" });
  say("alerts", `otto@site.example acknowledges ${issueId}: ${ack.status}`);
  check(
    "the acknowledgement is attributed and notified",
    ack.status === 200 && !!(await wait("issue.acknowledged at the pager", () => notifications.find(about("issue.acknowledged")))),
  );

  flaky.setBehaviour({ kind: "ok" });
  const replayed = await as("otto@site.example", "/replay", { target: flaky.name }, { "x-audit-reason": "edc-flaky is back after its outage" });
  say("alerts", `${flaky.name} is back; otto@site.example replays its dead letters: ${replayed.status} ${replayed.text.slice(0, 120)}`);
  check(
    `the dead dispatch went out again and ${flaky.name} holds ${deliveryId}`,
    !!(await wait(`${deliveryId} at ${flaky.name}`, () => flaky.delivered().has(deliveryId) || undefined)),
  );

  // wrangler dev runs no cron by itself; --test-scheduled lets the demo run the one-minute evaluation now.
  const tick = await http(`${base}/__scheduled?cron=${encodeURIComponent("* * * * *")}`, { timeoutMs: 30_000 });
  say("alerts", `the one-minute evaluation (GET /__scheduled?cron=* * * * *): ${tick.status}`);
  const resolved = await wait("issue.resolved at the pager", () => notifications.find(about("issue.resolved")));
  const issue = await admin.call("GET", `/issues/${issueId}`);
  const state = issue.json as { state?: string; resolvedBy?: string };
  check(
    `${issueId} resolved itself (resolved by ${state.resolvedBy ?? "nobody"}) and the pager got issue.resolved for the same issue`,
    resolved?.data.issueId === issueId && state.state === "resolved" && state.resolvedBy === "system",
  );
  check("every notification's signature verified at the pager (Standard Webhooks)", pager.tally.invalidSignatures === 0 && notifications.length > 0);
  return checks.length > 0 && checks.every(([, holds]) => holds);
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "(none)";
  }
}

/** Prints the final tally, where to look next, and the verdict. */
function printResult(
  summary: Summary,
  receivers: Target[],
  checks: TallyCheck[],
  run: {
    pass: boolean;
    complete: boolean;
    base: string;
    adminToken: string;
    refused: string[];
    backfillOk: boolean;
    pull: PullChapter;
    people: boolean;
    alerts: boolean;
  },
): void {
  process.stdout.write(
    `\nFinal tally: CentrePoint delivered ${summary.acceptedIds.length + run.refused.length + run.pull.deliveryIds.length} distinct deliveries: ${summary.acceptedIds.length} accepted as webhooks (the relay's ${summary.duplicate} duplicate answers and the ${summary.rejected.expected} forged requests it refused are not forwarded), ${run.refused.length} refused for a wrong key and backfilled from CentrePoint's history, ${run.pull.deliveryIds.length} in the PULL chapter\n`,
  );
  process.stdout.write(`${formatTally(receivers, checks)}\n\n`);
  process.stdout.write(`Dashboard:   ${run.base}/admin/\nAdmin token: ${run.adminToken}\n`);
  const why = [
    !summary.ok && "the simulator saw unexpected responses",
    !run.backfillOk && "the reconciliation did not backfill exactly the refused deliveries once",
    !run.pull.ok && "the PULL chapter did not see an enriched event, a correlated completion and a file link that redirects",
    !run.complete && "not every CentrePoint delivery reached both receivers in time",
    !run.people && "the people chapter did not hold",
    run.people && !run.alerts && "the alerts chapter did not hold",
    run.complete && !run.pass && summary.ok && run.backfillOk && run.people && run.alerts && "a receiver's ids differ from CentrePoint's delivery ids",
  ]
    .filter(Boolean)
    .join("; ");
  process.stdout.write(
    run.pass
      ? "RESULT: PASS: every CentrePoint delivery reached both receivers exactly once by webhook-id, the refused ones through reconciliation; events were enriched, a raw-data request was made and correlated, and a data file was fetched through its relay link; a viewer was refused and an operator's replay is in the audit trail; the flaky receiver's dead letter opened an issue, the pager was notified, and it resolved itself after the replay\n"
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

  const tmp = makeTempDir("centrepoint-relay-demo-");
  const secrets = {
    ADMIN_TOKEN: `demo-${randomBytes(16).toString("hex")}`,
    ALLOW_HTTP_TARGETS: "true",
    DEMO_HMAC_SECRET: randomBytes(24).toString("base64url"),
    DEMO_SIGNING_SECRET: `whsec_${randomBytes(24).toString("base64")}`,
    DEMO_CP_CLIENT_ID: `demo-client-${randomBytes(6).toString("hex")}`,
    DEMO_CP_CLIENT_SECRET: randomBytes(24).toString("base64url"),
    FILE_LINK_SECRET: randomBytes(32).toString("base64url"),
    // The REDCap example of docs/transforms.md reads its API token with $secret("REDCAP_API_TOKEN").
    REDCAP_API_TOKEN: randomBytes(16).toString("hex").toUpperCase(),
    // The alert channel demo-pager signs its notifications with this one (docs/alerting.md).
    DEMO_ALERT_SECRET: `whsec_${randomBytes(24).toString("base64")}`,
  };

  const receiverOptions = (name: string) => ({ verifySecret: secrets.DEMO_SIGNING_SECRET, log: (l: string) => say(name, l) });
  const receivers = [
    await startTarget("edc-healthy", { kind: "ok" }, receiverOptions("edc-healthy")),
    await startTarget("edc-flaky", failFirst(FLAKY_FAILURES), receiverOptions("edc-flaky")),
  ];
  for (const r of receivers) closers.push(r.close);
  const enrichedEvents: Record<string, any>[] = [];
  const enrichedReceiver = await startTarget(
    "edc-enriched",
    { kind: "ok" },
    {
      ...receiverOptions("edc-enriched"),
      onDelivered: (e) => void enrichedEvents.push(e),
    },
  );
  closers.push(enrichedReceiver.close);
  // Targets that speak a system's own API (docs/transforms.md): a REDCap record import and a FHIR Observation endpoint.
  const redcap = await startRedcapReceiver({ token: secrets.REDCAP_API_TOKEN, fields: EXAMPLE_REDCAP_FIELDS, log: (l) => say("redcap", l) });
  const fhir = await startFhirReceiver({ log: (l) => say("fhir", l) });
  closers.push(redcap.close, fhir.close);
  // The on-call pager: the alert channel demo-pager's webhook receiver; it prints each notification as it comes.
  const notifications: Notification[] = [];
  const pager = await startTarget(
    "pager",
    { kind: "ok" },
    {
      verifySecret: secrets.DEMO_ALERT_SECRET,
      onDelivered: (n) => {
        notifications.push(n as unknown as Notification);
        say("pager", describeNotification(n as unknown as Notification));
      },
    },
  );
  closers.push(pager.close);
  say("demo", `receivers: ${receivers.map((r) => `${r.name} ${r.url}`).join(", ")} (edc-flaky answers 503 to its first ${FLAKY_FAILURES} requests)`);

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const centrepoint = await startFakeCentrePoint({
    clients: [{ clientId: secrets.DEMO_CP_CLIENT_ID, clientSecret: secrets.DEMO_CP_CLIENT_SECRET, scopes: ["CentrePoint", "DataRetrieval"] }],
    webhooks: [{ studyId: String(STUDY_ID), webhookId: String(WEBHOOK_ID), url: `${base}/webhooks/${SOURCE_ID}` }],
    maxPageSize: 25,
    order: "shuffled",
    seed: randomInt(2 ** 31),
    // Raw-data requests complete 2 s after they are made; the PULL chapter's pump then sends the webhook.
    completionDelayMs: 2_000,
  });
  closers.push(centrepoint.close);
  say("demo", `fake CentrePoint V3 API (token, registration, delivery history, subjects, uploads, raw-data requests, data files) on ${centrepoint.url}`);

  const access = await startFakeAccess();
  closers.push(() => access.close());
  say("demo", `a local stand-in for Cloudflare Access on ${access.url} (serves its own keys)`);
  say("demo", `starting the relay: wrangler dev on ${base} (storage in ${tmp})`);
  const relay = await startDev({
    configPath: path.join(PROJECT_ROOT, "wrangler.toml"),
    persistTo: path.join(tmp, "state"),
    workDir: tmp,
    vars: { ...secrets, RELAY_PUBLIC_URL: base, ACCESS_TEAM_DOMAIN: access.url, ACCESS_AUD: access.audience },
    port,
    readyTimeoutMs: READY_TIMEOUT_MS,
    // wrangler dev runs no Cron Trigger by itself: the alerts chapter runs the one-minute evaluation through GET /__scheduled.
    testScheduled: true,
    onLine: (line) => void (RELAY_LINES_SHOWN.test(line) && say("relay", stripAnsi(line).slice(0, 220))),
  });
  closers.push(() => relay.stop());
  say("demo", "relay ready");
  const admin = adminClient(base, secrets.ADMIN_TOKEN);

  await configureRelay(admin, receivers, centrepoint.url);
  const transforms = await readFile(path.join(PROJECT_ROOT, "docs", "transforms.md"), "utf8");
  await putConfig(admin, "/targets/redcap", { ...docExample(transforms, "redcap"), url: `${redcap.url}/api/`, sources: [SOURCE_ID] });
  await putConfig(admin, "/targets/fhir", { ...docExample(transforms, "fhir"), url: `${fhir.url}/fhir/Observation`, sources: [SOURCE_ID] });
  say("demo", `system receivers (docs/transforms.md examples): REDCap API ${redcap.url}, FHIR server ${fhir.url}`);
  await putConfig(admin, "/alerts/demo-pager", {
    type: "webhook",
    url: pager.url,
    signing: { secretEnv: "DEMO_ALERT_SECRET" },
    description: "The on-call pager: every issue, every severity",
  });
  say("demo", `alert channel demo-pager: Standard Webhooks–signed issue notifications to the pager at ${pager.url}`);
  const stopHealth = startHealthPolling(
    admin,
    receivers.map((r) => r.name),
  );
  closers.push(async () => stopHealth());

  const ingress = `${base}/webhooks/${SOURCE_ID}`;
  const summary = await simulate(ingress, secrets.DEMO_HMAC_SECRET, centrepoint.fake);

  process.stdout.write("\nReconciliation: deliveries the relay refused, recovered from CentrePoint's delivery history\n\n");
  const refused = await refusedStretch(ingress, randomBytes(24).toString("base64url"), centrepoint.fake);
  const reconciliation = await reconcile(admin);
  const backfilledIds = (reconciliation.first?.backfilledIds as string[] | undefined) ?? [];
  const backfillOk =
    reconciliation.first?.complete === true &&
    reconciliation.first.backfilled === refused.length &&
    [...backfilledIds].sort().join() === [...refused].sort().join() &&
    reconciliation.secondBackfilled === 0 &&
    reconciliation.registrationOk;

  process.stdout.write("\nPULL: enrichment, an automatic raw-data request, a file through its relay link\n\n");
  const pull = await pullChapter(base, admin, ingress, secrets.DEMO_HMAC_SECRET, centrepoint, {
    receiver: enrichedReceiver,
    events: enrichedEvents,
  });

  const expected = [...summary.acceptedIds, ...refused, ...pull.deliveryIds];
  say("demo", `waiting for both receivers to hold all ${expected.length} CentrePoint deliveries (at most ${DELIVERY_TIMEOUT_MS / 1000} s)`);
  const complete = summary.acceptedIds.length > 0 && (await waitForDeliveries(receivers, expected));
  if (complete)
    await waitForIdleOutboxes(
      admin,
      [...receivers, enrichedReceiver].map((r) => r.name),
    );
  stopHealth();

  const checks = receivers.map((r) => checkTally(expected, r.tally));
  // After the tally: the people chapter's replay is one more (deliberate) copy at the first receiver.
  process.stdout.write("\nPeople: two people through Cloudflare Access, a refused action, a replay with a reason, the audit trail\n\n");
  const people = summary.acceptedIds.length > 0 && (await peopleChapter(base, admin, access, summary.acceptedIds[0]!, receivers[0]!.name, tmp));
  if (!people) say("demo", "the people chapter did not see a refused viewer, an operator's replay in the trail and a verified export");
  process.stdout.write("\nAlerts: an issue opened by the flaky receiver, the notification at the pager, acknowledged, resolved\n\n");
  const alerts =
    people &&
    (await alertsChapter(base, admin, access, {
      flaky: receivers[1]!,
      pager,
      notifications,
      ingress,
      secret: secrets.DEMO_HMAC_SECRET,
      centrepoint: centrepoint.fake,
    }));
  const pass = summary.ok && backfillOk && pull.ok && complete && checks.every((c) => c.holds) && people && alerts;
  printResult(summary, receivers, checks, { pass, complete, base, adminToken: secrets.ADMIN_TOKEN, refused, backfillOk, pull, people, alerts });
  const statuses = (m: Map<number, number>) => [...m].map(([status, n]) => `${n} × ${status}`).join(", ") || "no requests";
  process.stdout.write(
    `\nTransforms (docs/transforms.md, shown, not part of the pass check): REDCap holds ${redcap.records.size} records (${statuses(redcap.answered)}); ` +
      `the FHIR server holds ${fhir.observations.length} Observations (${statuses(fhir.answered)})\n`,
  );
  if (!pass) process.stdout.write(`\nLast relay log lines:\n${tail(relay, 25)}\n`);

  if (keep) {
    process.stdout.write("\n--keep: the relay and the receivers stay up; press Ctrl-C to stop (everything is stopped and removed then).\n");
    await new Promise<never>(() => undefined);
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
