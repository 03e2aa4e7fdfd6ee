import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { createFakeCentrePoint } from "../harness/fake-centrepoint.ts";
import { historyLoggingSend, signCentrePointBody, startFakeCentrePoint } from "../harness/fake-centrepoint-server.ts";
import type { SendFn } from "../harness/http/client.ts";

const CLIENT = { clientId: "node-client", clientSecret: "node-client-secret" };

/** POSTs the client-credentials form and returns the access token. */
async function token(base: string, scope: string): Promise<string> {
  const res = await fetch(`${base}/connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret, grant_type: "client_credentials", scope }),
    signal: AbortSignal.timeout(5_000),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { access_token: string; expires_in: number; token_type: string };
  assert.equal(body.token_type, "Bearer");
  assert.equal(body.expires_in, 3600);
  return body.access_token;
}

/** GETs `path` with a bearer token. */
async function get(base: string, path: string, bearer: string): Promise<Response> {
  return fetch(`${base}${path}`, { headers: { authorization: `Bearer ${bearer}` }, signal: AbortSignal.timeout(5_000) });
}

/** A stand-in relay on 127.0.0.1 that records each POST. */
async function startRelay(): Promise<{ url: string; received: Array<{ headers: http.IncomingHttpHeaders; body: string }>; close: () => Promise<void> }> {
  const received: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/centrepoint/study-189`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test("the fake CentrePoint serves tokens, history pages and injected 429s over HTTP on 127.0.0.1", async () => {
  const server = await startFakeCentrePoint({ clients: [CLIENT], maxPageSize: 2 });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const bearer = await token(server.url, "CentrePoint");
    for (let i = 0; i < 3; i++) server.fake.recordDelivery({ event: "upload", body: `{"uploadId":"${i}"}` });

    const page = await get(server.url, "/centrepoint/v3/Studies/189/Webhooks/74/history?limit=100&offset=0", bearer);
    assert.equal(page.status, 200);
    const body = (await page.json()) as { items: Array<{ request: { headers: string } }>; totalCount: number; links: object };
    assert.equal(body.items.length, 2);
    assert.equal(body.totalCount, 3);
    assert.deepEqual(body.links, {});
    assert.equal(typeof body.items[0]!.request.headers, "string");

    server.fake.failNext(1, { status: 429, retryAfter: "3" });
    const limited = await get(server.url, "/centrepoint/v3/Studies/189/Webhooks/74/history?offset=2", bearer);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "3");
    await limited.arrayBuffer();
    const after = await get(server.url, "/centrepoint/v3/Studies/189/Webhooks/74/history?offset=2", bearer);
    assert.equal(after.status, 200);
    assert.equal(((await after.json()) as { items: unknown[] }).items.length, 1);

    assert.deepEqual(
      server.fake.requests().map((r) => [r.method, r.path, r.status, r.bearer]),
      [
        ["POST", "/connect/token", 200, false],
        ["GET", "/centrepoint/v3/Studies/189/Webhooks/74/history", 200, true],
        ["GET", "/centrepoint/v3/Studies/189/Webhooks/74/history", 429, true],
        ["GET", "/centrepoint/v3/Studies/189/Webhooks/74/history", 200, true],
      ],
    );
  } finally {
    await server.close();
  }
  await assert.rejects(fetch(`${server.url}/connect/token`, { method: "POST", signal: AbortSignal.timeout(2_000) }));
});

test("over HTTP the fake limits each peer address to its rate per minute: 429 text/plain with Retry-After in seconds, counted", async () => {
  const clock = { t: Date.UTC(2030, 0, 1) };
  const server = await startFakeCentrePoint({ clients: [CLIENT], rateLimitPerMinute: 3, now: () => clock.t });
  try {
    const bearer = await token(server.url, "CentrePoint"); // 1
    for (let i = 0; i < 2; i++) {
      clock.t += 1_000;
      const res = await get(server.url, "/centrepoint/v3/Studies/189/Subjects/44732", bearer); // 2, 3
      assert.equal(res.status, 200);
      const subject = (await res.json()) as { timezone: string; dob: string };
      assert.match(subject.timezone, /^[A-Za-z_]+\/[A-Za-z_]+$/);
      assert.match(subject.dob, /^\d{4}-\d{2}-\d{2}$/);
    }
    const limited = await get(server.url, "/centrepoint/v3/Studies/189/Subjects/44732", bearer);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "58");
    assert.match(limited.headers.get("content-type") ?? "", /^text\/plain/);
    assert.match(await limited.text(), /rate limit/i);
    assert.equal(server.fake.rateLimited(), 1);
    clock.t += 58_000;
    assert.equal((await get(server.url, "/centrepoint/v3/Studies/189/Subjects/44732", bearer)).status, 200);
  } finally {
    await server.close();
  }
});

test("the webhook pump sends data_retrieval_complete signed like CentrePoint and records it in history", async () => {
  let clock = Date.UTC(2030, 0, 1);
  const server = await startFakeCentrePoint({ clients: [CLIENT], now: () => clock, completionDelayMs: 60_000 });
  const relay = await startRelay();
  try {
    const bearer = await token(server.url, "DataRetrieval");
    const created = await fetch(`${server.url}/dataretrieval/v3/RawActivityRequests`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body: JSON.stringify({
        fileFormat: "csv",
        studyId: 189,
        subjectId: 19525,
        beginTimestampUtc: "2029-12-31T14:00:00Z",
        endTimestampUtc: "2029-12-31T15:00:00Z",
      }),
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(created.status, 200);
    const { id } = (await created.json()) as { id: string };

    const pump = server.startWebhookPump({ relayUrl: relay.url, secret: "hmac-secret", intervalMs: 60_000, maxTicks: 5 });
    assert.equal(pump.active(), true);
    assert.deepEqual(await pump.tick(), []); // not due yet
    clock += 60_000;
    const [send] = await pump.tick();
    assert.equal(send?.status, 200);
    assert.equal(send?.trackingId, id);

    assert.equal(relay.received.length, 1);
    const { headers, body } = relay.received[0]!;
    assert.equal(headers["x-actigraph-event"], "data_retrieval_complete");
    assert.equal(headers["x-actigraph-delivery"], send?.deliveryId);
    assert.equal(headers["x-actigraph-webhook-id"], "74");
    assert.equal(headers["x-actigraph-signature"], signCentrePointBody("hmac-secret", body));
    assert.equal((JSON.parse(body) as { tracking_id: string }).tracking_id, id);

    const [item] = server.fake.history();
    assert.equal(item?.webhookEvent, "data_retrieval_complete");
    assert.equal(item?.response?.responseCode, 200);
    assert.equal((JSON.parse(item!.request.headers) as Record<string, string[]>)["X-ActiGraph-Delivery"]?.[0], send?.deliveryId);

    await server.close();
    assert.equal(pump.active(), false);
  } finally {
    await server.close().catch(() => undefined);
    await relay.close();
  }
});

test("a failed pump send is recorded with CentrePoint's error message and no response", async () => {
  const server = await startFakeCentrePoint({ clients: [CLIENT], completionDelayMs: 0 });
  try {
    const bearer = await token(server.url, "DataRetrieval");
    await fetch(`${server.url}/dataretrieval/v3/RawActivityRequests`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body: JSON.stringify({
        fileFormat: "avro",
        studyId: 189,
        subjectId: 1,
        beginTimestampUtc: "2029-12-31T14:00:00Z",
        endTimestampUtc: "2029-12-31T15:00:00Z",
      }),
      signal: AbortSignal.timeout(5_000),
    }).then((r) => r.arrayBuffer());
    const refused = async () => {
      throw new TypeError("connect ECONNREFUSED 127.0.0.1:9");
    };
    const pump = server.startWebhookPump({ relayUrl: "http://127.0.0.1:9/", secret: "s", maxTicks: 0, fetch: refused });
    assert.equal(pump.active(), false);
    const [send] = await pump.tick();
    assert.equal(send?.status, null);
    const [item] = server.fake.history();
    assert.equal(item?.response, undefined);
    assert.match(item?.errorMessage ?? "", /^An error occurred while attempting to send a webhook message: connect ECONNREFUSED/);
  } finally {
    await server.close();
  }
});

test("a logging sender records CentrePoint's sends in its history, as sent and as answered, and leaves out what the filter refuses", async () => {
  const fake = createFakeCentrePoint();
  const answers = [200, 401, 503];
  let n = 0;
  const send: SendFn = async () => {
    const status = answers[n++]!;
    return status === 503 ? { ok: false, error: "socket hang up" } : { ok: true, value: { status, headers: {}, body: "", latencyMs: 1 } };
  };
  const logged = historyLoggingSend(fake, send, { logs: (status) => status !== 401 });
  const headers = (id: string) => ({ "X-ActiGraph-Event": "upload", "X-ActiGraph-Delivery": id, "X-ActiGraph-Signature": "c2ln" });
  for (const id of ["d-1", "d-2", "d-3"]) await logged("http://127.0.0.1:9/webhooks/s", headers(id), `{"n":"${id}"}`);
  const items = fake.history();
  assert.equal(items.length, 2);
  assert.equal(items[0]?.response?.responseCode, 200);
  assert.equal(JSON.parse(items[0]!.request.headers)["X-ActiGraph-Signature"][0], "c2ln");
  assert.equal(items[0]?.request.body, '{"n":"d-1"}');
  assert.equal(JSON.parse(items[1]!.request.headers)["X-ActiGraph-Delivery"][0], "d-3");
  assert.equal(items[1]?.errorMessage, "An error occurred while attempting to send a webhook message: socket hang up");
});
