import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fhir from "fhir";
import jsonata from "jsonata";
import { docExample } from "../harness/targets/doc-examples.ts";

/**
 * The FHIR example of docs/transforms.md, validated by an independent FHIR library: the `fhir`
 * package's R4 validator does not run in workerd, so this evaluates the doc's expression with
 * `jsonata` in Node over the golden daily statistics event (the vitest example test sends the same
 * expression through the relay).
 */
const doc = readFileSync(new URL("../docs/transforms.md", import.meta.url), "utf8");
const golden = JSON.parse(readFileSync(new URL("../test/providers/centrepoint/golden/daily-statistics-complete.json", import.meta.url), "utf8")) as {
  body: unknown;
  expected: { envelope: { id: string; data: Record<string, unknown> } };
};

function input(enrichment?: unknown) {
  const event = { ...golden.expected.envelope, data: { ...golden.expected.envelope.data, ...(enrichment ? { enrichment } : {}) } };
  return {
    event,
    delivery: { id: event.id, kind: "daily_statistics.completed", source: "study-189", receivedAt: "2024-06-10T12:34:56.789Z", body: golden.body },
    target: { id: "fhir" },
  };
}

const validator = new fhir.Fhir();

async function observation(enrichment?: unknown): Promise<Record<string, unknown>> {
  const body = docExample(doc, "fhir").transform.body as string;
  return JSON.parse(JSON.stringify(await jsonata(body).evaluate(input(enrichment)))) as Record<string, unknown>;
}

describe("docs/transforms.md FHIR example", () => {
  it("is a valid R4 Observation for the fhir package's validator", async () => {
    const obs = await observation();
    const result = validator.validate(obs) as { valid: boolean; messages: { severity: string; location: string; message: string }[] };
    assert.deepEqual(
      result.messages.filter((m) => m.severity === "error"),
      [],
    );
    assert.equal(result.valid, true);
    assert.equal((obs.subject as { identifier: { value: string } }).identifier.value, "0123TEST");
  });

  it("takes the subject identifier from the enrichment when there is one", async () => {
    const obs = await observation({ status: "complete", reasons: [], subject: { subjectId: "17887", subjectIdentifier: "SITE-A-0042" } });
    assert.equal((obs.subject as { identifier: { value: string } }).identifier.value, "SITE-A-0042");
    assert.equal((validator.validate(obs) as { valid: boolean }).valid, true);
  });

  it("the validator can fail: an Observation without status or with a text quantity is refused", () => {
    const bad = { resourceType: "Observation", code: { text: "steps" }, valueQuantity: { value: "865" } };
    assert.equal((validator.validate(bad) as { valid: boolean }).valid, false);
  });
});
