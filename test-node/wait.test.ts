import assert from "node:assert/strict";
import { test } from "node:test";
import { waitFor } from "../harness/wait.ts";

test("waitFor returns the first truthy value; a throwing check counts as not yet", async () => {
  let calls = 0;
  const value = await waitFor(
    "the third call",
    () => {
      calls++;
      if (calls === 1) throw new Error("not listening yet");
      return calls === 3 ? "ready" : null;
    },
    { timeoutMs: 5_000, intervalMs: 1 },
  );
  assert.equal(value, "ready");
  assert.equal(calls, 3);
});

test("waitFor with rethrow ends at once with the check's error", async () => {
  let calls = 0;
  await assert.rejects(
    waitFor(
      "never",
      () => {
        calls++;
        throw new Error("exited early");
      },
      { timeoutMs: 5_000, intervalMs: 1, rethrow: true },
    ),
    /^Error: exited early$/,
  );
  assert.equal(calls, 1);
});

test("waitFor times out naming what it waited for, the last error and the detail", async () => {
  await assert.rejects(
    waitFor(
      "the relay",
      () => {
        throw new Error("refused");
      },
      { timeoutMs: 20, intervalMs: 5, detail: () => "\n--- output ---" },
    ),
    { message: "timed out after 20 ms waiting for the relay (last error: refused)\n--- output ---" },
  );
});
