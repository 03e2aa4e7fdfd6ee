import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { signBody } from "../harness/centrepoint/signing.ts";
import type { Summary } from "../harness/simulator/summary.ts";

const SIMULATE = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "scripts", "simulate.ts");
const SECRET = "B3`MlG4sJR.X^-%w=oG_UrNBEpszl?";

interface FakeRelay {
  url: string;
  /** Raw header lists (names in wire casing) of every request. */
  requests: { rawHeaders: string[]; body: string }[];
  accepted: Set<string>;
  close: () => Promise<void>;
}

/**
 * A tiny relay on 127.0.0.1 with the real one's contract: the HMAC signature over the raw body
 * or 401, the handshake echo, and dedupe on X-ActiGraph-Delivery. `dedupe: false` and
 * `echo: false` make it misbehave so the simulator has something to catch.
 */
async function startFakeRelay(options: { dedupe?: boolean; echo?: boolean } = {}): Promise<FakeRelay> {
  const requests: FakeRelay["requests"] = [];
  const accepted = new Set<string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      requests.push({ rawHeaders: req.rawHeaders, body: raw.toString("utf8") });
      const json = (status: number, body: object, headers: Record<string, string> = {}) =>
        res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
      if (req.headers["x-actigraph-signature"] !== signBody(SECRET, raw)) return json(401, { error: "unauthorized", message: "Invalid credentials." });
      if (req.headers["x-actigraph-event"] === "validation") {
        return json(200, { status: "validated" }, options.echo === false ? {} : { "X-ActiGraph-Hook-Secret": String(req.headers["x-actigraph-hook-secret"]) });
      }
      const id = String(req.headers["x-actigraph-delivery"]);
      const duplicate = options.dedupe !== false && accepted.has(id);
      accepted.add(id);
      json(200, { status: duplicate ? "duplicate" : "accepted", deliveryId: id });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/demo`,
    requests,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs the simulator CLI (same Node as the tests), bounded to 20 s. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SIMULATE, ...args], { stdio: ["ignore", "pipe", "pipe"], timeout: 20_000, killSignal: "SIGKILL" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const COMMON = ["--secret", SECRET, "--count", "30", "--rate", "300", "--duplicates", "0.2", "--bad-signatures", "0.1", "--seed", "1", "--json"];

describe("simulate against a fake relay on 127.0.0.1", () => {
  let relay: FakeRelay;
  before(async () => (relay = await startFakeRelay()));
  after(() => relay.close());

  test("a well-behaved relay: exit 0 and the expected counts", async () => {
    const { code, stdout, stderr } = await runCli(["--url", relay.url, ...COMMON]);
    assert.equal(code, 0, stderr);
    const summary = JSON.parse(stdout) as Summary;
    assert.equal(summary.ok, true);
    assert.deepEqual(summary.handshake, { status: "ok", httpStatus: 200 });
    assert.equal(summary.sent, 30);
    assert.deepEqual(summary.byStatus, { "200": 27, "401": 3 });
    assert.equal(summary.accepted, 21);
    assert.equal(summary.duplicate, 6);
    assert.deepEqual(summary.rejected, { expected: 3, unexpected: 0 });
    assert.equal(summary.unexpected, 0);
    assert.equal(summary.seed, 1);
    assert.ok(summary.latencyMs.p50 > 0 && summary.latencyMs.p99 >= summary.latencyMs.p50);
    assert.deepEqual(new Set(summary.acceptedIds), relay.accepted);
    assert.equal(relay.requests.length, 31, "handshake + 30 deliveries");
  });

  test("requests carry CentrePoint's headers in the documented casing", () => {
    const headers = relay.requests[1]!.rawHeaders;
    const value = (name: string) => headers[headers.indexOf(name) + 1];
    for (const name of [
      "X-ActiGraph-Event",
      "X-ActiGraph-Delivery",
      "X-ActiGraph-Webhook-id",
      "X-ActiGraph-Signature",
      "X-Client-Cert-Used",
      "User-Agent",
      "Content-Type",
      "Expect",
    ]) {
      assert.ok(headers.includes(name), `${name} in ${headers.join(",")}`);
    }
    assert.equal(value("User-Agent"), "ActiGraph-Hookshot/1.0 ActiGraph-Hookshot/1.0");
    assert.equal(value("X-Client-Cert-Used"), "False");
    assert.equal(value("Expect"), "100-continue");
    const handshake = relay.requests[0]!;
    assert.equal(handshake.rawHeaders[handshake.rawHeaders.indexOf("X-ActiGraph-Event") + 1], "validation");
    const code = handshake.rawHeaders[handshake.rawHeaders.indexOf("X-ActiGraph-Hook-Secret") + 1];
    assert.equal(JSON.parse(handshake.body).ValidationCode, code);
  });
});

test("a relay that does not dedupe: duplicates are unexpected, exit 1", async () => {
  const relay = await startFakeRelay({ dedupe: false });
  try {
    const { code, stdout } = await runCli(["--url", relay.url, ...COMMON]);
    assert.equal(code, 1);
    const summary = JSON.parse(stdout) as Summary;
    assert.equal(summary.ok, false);
    assert.equal(summary.duplicate, 0);
    assert.equal(summary.unexpected, 6);
    assert.ok(summary.failures.every((f) => f.expected === "duplicate"));
  } finally {
    await relay.close();
  }
});

test("a handshake without the echoed code fails the run before any event, exit 1", async () => {
  const relay = await startFakeRelay({ echo: false });
  try {
    const { code, stdout } = await runCli(["--url", relay.url, ...COMMON]);
    assert.equal(code, 1);
    const summary = JSON.parse(stdout) as Summary;
    assert.equal(summary.handshake.status, "failed");
    assert.match(summary.handshake.detail!, /not echoed/);
    assert.equal(summary.sent, 0);
    assert.equal(relay.requests.length, 1);
  } finally {
    await relay.close();
  }
});

test("the table output, and exit 2 with a message on bad arguments", async () => {
  const relay = await startFakeRelay();
  try {
    const table = await runCli(["--url", relay.url, "--secret", SECRET, "--count", "5", "--rate", "300", "--no-handshake"]);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /result +OK: every response was as expected/);
    assert.match(table.stderr, /simulate: 5\/5/);
  } finally {
    await relay.close();
  }
  const bad = await runCli(["--url", "http://127.0.0.1:1/webhooks/x", "--rate", "lots"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--rate must be requests per second/);
});
