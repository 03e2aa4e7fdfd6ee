import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { EXAMPLE_REDCAP_FIELDS } from "../harness/targets/redcap.ts";
import { startFhirReceiver, startRedcapReceiver } from "../harness/targets/system-receivers.ts";

describe("demo system receivers (127.0.0.1, random ports)", async () => {
  const redcap = await startRedcapReceiver({ token: "T0KEN", fields: EXAMPLE_REDCAP_FIELDS, log: () => undefined });
  const fhir = await startFhirReceiver({ log: () => undefined });
  after(async () => {
    await redcap.close();
    await fhir.close();
  });
  const form = (fields: Record<string, string>) =>
    fetch(redcap.url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields) });

  it("REDCap: imports records, refuses a wrong token and an unknown field as REDCap does", async () => {
    const base = { token: "T0KEN", content: "record", format: "json", type: "flat", returnContent: "count" };
    const good = await form({ ...base, data: JSON.stringify([{ record_id: "S-1", cp_steps: 865 }]) });
    assert.equal(good.status, 200);
    assert.deepEqual(await good.json(), { count: 1 });
    assert.deepEqual(redcap.records.get("S-1"), { record_id: "S-1", cp_steps: "865" });
    assert.equal((await form({ ...base, token: "nope", data: "[]" })).status, 403);
    const bad = await form({ ...base, data: JSON.stringify([{ record_id: "S-1", height: 180 }]) });
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { error: "The following fields were not found in the project as real data fields: height" });
  });

  it("FHIR: stores an Observation (201) and answers an OperationOutcome for an incomplete one", async () => {
    const obs = {
      resourceType: "Observation",
      status: "final",
      code: { text: "steps" },
      subject: { display: "S-1" },
      effectivePeriod: {},
      valueQuantity: { value: 1 },
    };
    const ok = await fetch(fhir.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(obs) });
    assert.equal(ok.status, 201);
    assert.equal(fhir.observations.length, 1);
    const bad = await fetch(fhir.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ resourceType: "Observation" }),
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { resourceType: string }).resourceType, "OperationOutcome");
  });
});
