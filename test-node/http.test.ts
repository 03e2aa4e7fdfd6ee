import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { createSender } from "../harness/http/client.ts";

/** A server on 127.0.0.1 running `handler`; closed after `use`. */
async function withServer(server: http.Server, use: (url: string) => Promise<void>): Promise<void> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const echoBody = (req: http.IncomingMessage, res: http.ServerResponse) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => res.writeHead(200).end(body));
};

test("with Expect: 100-continue the body follows the server's 100 Continue", async () => {
  const sender = createSender({ concurrency: 1, timeoutMs: 5_000 });
  await withServer(http.createServer(echoBody), async (url) => {
    const r = await sender.send(url, { Expect: "100-continue" }, '{"a":1}');
    assert.ok(r.ok);
    assert.equal(r.value.body, '{"a":1}');
    assert.ok(r.value.latencyMs < 300, `answered after 100 Continue, not the fallback wait (${r.value.latencyMs} ms)`);
  });
  sender.close();
});

test("a server that never sends 100 Continue still gets the body after a short wait", async () => {
  const sender = createSender({ concurrency: 1, timeoutMs: 5_000 });
  const server = http.createServer();
  server.on("checkContinue", echoBody); // handles the request without writing 100 Continue
  await withServer(server, async (url) => {
    const r = await sender.send(url, { Expect: "100-continue" }, "late body");
    assert.ok(r.ok);
    assert.equal(r.value.body, "late body");
    assert.ok(r.value.latencyMs >= 300);
  });
  sender.close();
});

test("an early final answer is taken without sending the body", async () => {
  const sender = createSender({ concurrency: 1, timeoutMs: 5_000 });
  const server = http.createServer();
  server.on("checkContinue", (_req, res) => res.writeHead(401).end("no"));
  await withServer(server, async (url) => {
    const r = await sender.send(url, { Expect: "100-continue" }, "secret body");
    assert.ok(r.ok);
    assert.equal(r.value.status, 401);
  });
  sender.close();
});

test("no response within the timeout is an error result, not a hang", async () => {
  const sender = createSender({ concurrency: 1, timeoutMs: 200 });
  await withServer(
    http.createServer(() => {}),
    async (url) => {
      const r = await sender.send(url, {}, "x");
      assert.equal(r.ok, false);
      assert.match(r.ok ? "" : r.error, /no response within 200 ms/);
    },
  );
  sender.close();
});
