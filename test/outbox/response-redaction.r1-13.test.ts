import { describe, expect, it, vi } from "vitest";
import { admin } from "../support/helpers";
import { clockForEachTest } from "../support/clock";
import { fakeTarget, fireAlarm, makeItem, newTarget } from "../support/outbox";

/**
 * Review finding 13: a target that echoes request headers showed its own credential in the stored
 * response (first 4 KiB), in the API and the dashboard.
 */

/** TEST_TARGET_TOKEN of vitest.config.ts. */
const TOKEN = "test-target-token";

clockForEachTest({ quiet: [] });

describe("responses of an echoing target", () => {
  it("are stored with the target's own secret and Authorization-like values redacted", async () => {
    const { id, stub } = await newTarget({ url: "https://echo.example/hooks", auth: { type: "bearer", tokenEnv: "TEST_TARGET_TOKEN" } });
    fakeTarget(
      (req) =>
        new Response(JSON.stringify({ youSent: req.headers, note: `token ${TOKEN} and Authorization: Basic dXNlcjpwYXNz` }), {
          status: 500,
          headers: { "x-request-id": `echo ${TOKEN}`, server: `Bearer ${TOKEN}` },
        }),
    );
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const item = makeItem();
    await stub.acceptHandoff(id, [item]);
    await fireAlarm(stub);
    const detail = await stub.getDispatch(item.source, item.deliveryId);
    const attempt = detail!.attempts[0]!;
    expect(attempt.status).toBe(500);
    const stored = JSON.stringify(attempt);
    expect(stored).not.toContain(TOKEN);
    expect(stored).not.toContain("dXNlcjpwYXNz");
    expect(attempt.responseBody).toContain("[redacted]");
    const api = await (await admin(`/targets/${id}/health`)).text();
    expect(api).not.toContain(TOKEN);
  });
});
