import assert from "node:assert/strict";
import { test } from "node:test";
import { Webhook } from "standardwebhooks";
import { failFirst, startTarget } from "../harness/targets/controllable-target.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/** POSTs a CloudEvent the way the relay does: Standard Webhooks headers signed with `secret`. */
async function deliver(url: string, id: string, secret = SECRET): Promise<number> {
  const body = JSON.stringify({ specversion: "1.0", id, type: "com.actigraph.centrepoint.upload.started" });
  const timestamp = new Date();
  const signature = new Webhook(secret).sign(id, timestamp, body);
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/cloudevents+json",
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
      "webhook-signature": signature,
    },
    body,
    signal: AbortSignal.timeout(5_000),
  });
  await res.arrayBuffer();
  return res.status;
}

test("a target verifies signatures, fails its first requests, then tallies ids", async () => {
  const lines: string[] = [];
  const delivered: unknown[] = [];
  const receiver = await startTarget("edc-test", failFirst(2), {
    verifySecret: SECRET,
    log: (l) => lines.push(l),
    onDelivered: (e) => void delivered.push(e.id),
  });
  try {
    assert.equal(await deliver(receiver.url, "bad", "whsec_c2VjcmV0LW90aGVyLXRoYW4tdGhlLXJlYWwtb25l"), 401);
    assert.equal(await deliver(receiver.url, "a"), 503);
    assert.equal(await deliver(receiver.url, "b"), 503);
    assert.equal(await deliver(receiver.url, "a"), 200);
    assert.equal(await deliver(receiver.url, "b"), 200);
    assert.equal(await deliver(receiver.url, "b"), 200);
    assert.equal(receiver.tally.invalidSignatures, 1);
    assert.equal(receiver.tally.refused, 2);
    assert.deepEqual(
      [...receiver.tally.delivered],
      [
        ["a", 1],
        ["b", 2],
      ],
    );
    assert.match(lines.at(-1)!, /^200 upload\.started .* b .*REPEAT/);
    assert.match(lines[1]!, /^503 upload\.started .* a .*simulated outage: 503 1 of 2/);
    assert.deepEqual(delivered, ["a", "b", "b"]);
    assert.deepEqual(
      receiver.arrivals.map((a) => a.status),
      [401, 503, 503, 200, 200, 200],
    );
  } finally {
    await receiver.close();
  }
});
