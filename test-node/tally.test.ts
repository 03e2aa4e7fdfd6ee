import assert from "node:assert/strict";
import { test } from "node:test";
import { checkTally, createTally, recordAttempt } from "../harness/targets/tally.ts";

test("recordAttempt numbers attempts per id and counts refusals", () => {
  const t = createTally();
  assert.equal(recordAttempt(t, "a", "refused"), 1);
  assert.equal(recordAttempt(t, "a", "delivered"), 2);
  assert.equal(recordAttempt(t, "b", "delivered"), 1);
  assert.equal(t.refused, 1);
  assert.deepEqual(
    [...t.delivered],
    [
      ["a", 1],
      ["b", 1],
    ],
  );
});

test("checkTally holds when distinct delivered ids equal the accepted ids; repeats and retries are reported", () => {
  const t = createTally();
  recordAttempt(t, "a", "refused");
  recordAttempt(t, "a", "delivered");
  recordAttempt(t, "b", "delivered");
  recordAttempt(t, "b", "delivered");
  assert.deepEqual(checkTally(["a", "b"], t), { expected: 2, distinct: 2, missing: [], unknown: [], repeats: 1, retried: 1, holds: true });
});

test("checkTally fails on a missing id, an unknown id, or a bad signature", () => {
  const t = createTally();
  recordAttempt(t, "a", "delivered");
  assert.deepEqual(checkTally(["a", "b"], t).missing, ["b"]);
  assert.equal(checkTally(["a", "b"], t).holds, false);
  recordAttempt(t, "b", "delivered");
  recordAttempt(t, "z", "delivered");
  assert.deepEqual(checkTally(["a", "b"], t).unknown, ["z"]);
  assert.equal(checkTally(["a", "b"], t).holds, false);
  const clean = createTally();
  recordAttempt(clean, "a", "delivered");
  clean.invalidSignatures = 1;
  assert.equal(checkTally(["a"], clean).holds, false);
});
