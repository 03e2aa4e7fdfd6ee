import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { admin } from "../support/helpers";
import { clockForEachTest } from "../support/clock";
import { fakeTarget, fireAlarm, makeItem, newTarget } from "../support/outbox";

/**
 * Review finding 12: a 410 wrote the target document back with `enabled: false` from a config copy
 * up to 5 s old, undoing an admin edit made meanwhile. A 410 is now a pause held by the outbox
 * alone; the document is never written by the outbox.
 */

clockForEachTest({ quiet: [] });

describe("a 410 racing an admin edit", () => {
  it("keeps the admin's edit and pauses the target in its outbox", async () => {
    const { id, stub } = await newTarget({ url: "https://edc.example/hooks" });
    const edited = { url: "https://edc.example/hooks-v2", description: "moved by the operator" };
    fakeTarget(async () => {
      // While the attempt is in flight, an operator changes the document.
      expect((await admin(`/targets/${id}`, { method: "PUT", body: JSON.stringify(edited) })).status).toBe(200);
      return new Response("gone", { status: 410 });
    });
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    await stub.acceptHandoff(id, [makeItem()]);
    await fireAlarm(stub);
    expect(JSON.parse((await env.CONFIG.get(`target:${id}`))!)).toMatchObject({ ...edited, enabled: true });
    const health = await stub.health();
    expect(health.heldBy).toBe("gone");
    expect(health.counts.held).toBe(1);
  });
});
