import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { type CloudEvent, HTTP } from "cloudevents";
import { batchBody } from "../src/outbox/batch-body.ts";

/**
 * Batch mode's body (src/outbox/batch-body.ts, what the relay sends) under the official CloudEvents
 * SDK's batch parsing. The SDK does not load in workerd, so this runs in Node over the golden
 * envelopes of every documented payload (the normalizer's own output, test/providers/centrepoint/golden),
 * 100 per batch as in the warehouse example of docs/transforms.md.
 */
const dir = new URL("../test/providers/centrepoint/golden/", import.meta.url);
const goldens = readdirSync(dir)
  .filter((f) => f.endsWith(".json"))
  .map((f) => (JSON.parse(readFileSync(new URL(f, dir), "utf8")) as { expected: { envelope: Record<string, unknown> } }).expected.envelope);

function hundred(): string[] {
  return Array.from({ length: 100 }, (_, i) => JSON.stringify({ ...goldens[i % goldens.length], id: `delivery-${i}` }));
}

const parse = (body: string) => HTTP.toEvent({ headers: { "content-type": "application/cloudevents-batch+json" }, body }) as CloudEvent<unknown>[];

describe("CloudEvents batch body", () => {
  it("parses as a batch of 100 valid CloudEvents, in order", () => {
    const envelopes = hundred();
    const events = parse(batchBody(envelopes));
    assert.equal(events.length, 100);
    assert.deepEqual(
      events.map((e) => e.id),
      envelopes.map((e) => (JSON.parse(e) as { id: string }).id),
    );
    for (const e of events) assert.equal(e.validate(), true);
  });

  it("the SDK can refuse: an envelope without source is not a valid CloudEvent", () => {
    const bad = JSON.stringify({ ...goldens[0], id: "x", source: undefined });
    assert.throws(() => parse(batchBody([bad])).forEach((e) => e.validate()));
  });
});
