import assert from "node:assert/strict";
import { test } from "node:test";
import { buildPlan, orderKinds, splitCount } from "../harness/simulator/plan.ts";
import { createRng, guidLike } from "../harness/prng.ts";

test("splitCount rounds duplicates and bad ones down, keeping at least one fresh", () => {
  assert.deepEqual(splitCount(40, 0.1, 0.05), { fresh: 34, duplicate: 4, bad: 2 });
  assert.deepEqual(splitCount(1, 0.5, 0.4), { fresh: 1, duplicate: 0, bad: 0 });
  assert.deepEqual(splitCount(10, 0, 0), { fresh: 10, duplicate: 0, bad: 0 });
});

test("orderKinds always starts with a fresh delivery", () => {
  for (let seed = 0; seed < 50; seed++) {
    const kinds = orderKinds({ fresh: 1, duplicate: 5, bad: 5 }, createRng(seed));
    assert.equal(kinds[0], "fresh");
    assert.equal(kinds.length, 11);
  }
});

test("buildPlan: counts, unique GUID-shaped ids, bodies as JSON, the handshake code in its body", () => {
  const idRng = createRng(100);
  const plan = buildPlan({ count: 40, subjects: 3, duplicates: 0.1, badSignatures: 0.05 }, createRng(1), () => guidLike(idRng));
  const kinds = plan.requests.map((r) => r.kind);
  assert.equal(kinds.filter((k) => k === "fresh").length, 34);
  assert.equal(kinds.filter((k) => k === "duplicate").length, 4);
  assert.equal(kinds.filter((k) => k === "bad").length, 2);
  const ids = plan.requests.flatMap((r) => (r.kind === "duplicate" ? [] : [r.deliveryId]));
  assert.equal(new Set([...ids, plan.handshake.deliveryId]).size, ids.length + 1);
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  for (const r of plan.requests) if (r.kind !== "duplicate") assert.equal(typeof JSON.parse(r.body), "object");
  assert.deepEqual(JSON.parse(plan.handshake.body), { WebhookId: plan.webhookId, ValidationCode: plan.handshake.code });
  assert.match(plan.webhookId, /^\d+$/);
});

test("buildPlan: subjects take turns, so all of them appear", () => {
  const plan = buildPlan({ count: 12, subjects: 3, duplicates: 0, badSignatures: 0 }, createRng(5), () => "id");
  const subjects = plan.requests.map((r) => (r.kind === "duplicate" ? "" : r.subjectIdentifier));
  assert.deepEqual(new Set(subjects).size, 3);
  assert.deepEqual(subjects.slice(0, 3), ["000100", "000101", "000102"]);
});

test("buildPlan: the seed fixes payloads and order; ids come from newId", () => {
  const bodies = (seed: number) =>
    buildPlan({ count: 10, subjects: 2, duplicates: 0.2, badSignatures: 0 }, createRng(seed), () => "x").requests.map((r) =>
      r.kind === "duplicate" ? "dup" : r.body,
    );
  assert.deepEqual(bodies(3), bodies(3));
  assert.notDeepEqual(bodies(3), bodies(4));
});
