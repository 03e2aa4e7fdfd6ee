import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { clearConfigCache } from "../../src/config/store";
import { segmentKeys } from "../../src/ledger/archive-format";
import { admin, freshId, ledgerOf, postWebhook, putSource, putTarget, uploadBody } from "../support/helpers";
import { clockForEachTest, DAY, T0 } from "../support/clock";
import { fakeTarget, outboxOf } from "../support/outbox";
import { runDue } from "../support/ledger";

clockForEachTest();
beforeEach(() => clearConfigCache());

/** Lets everything due by now run: the ledger's hand-off, archive and pruning, the outbox's sends and pruning. */
async function settle(source: string, target: string) {
  await runDue(ledgerOf(source));
  await runDue(outboxOf(target));
}

describe("replay of a delivery whose body retention pruned", () => {
  it("reads the body back from the archive and sends the original bytes; answers a clear error when the archive lacks it", async () => {
    const source = freshId();
    const target = freshId("t");
    const edc = fakeTarget();
    await putSource(source, { retention: { bodyDays: 1 } });
    // format raw: the target receives CentrePoint's body byte for byte; its outbox keeps delivered events 1 day.
    await putTarget(target, { url: "https://edc.example/hooks", sources: [source], format: "raw", retentionDays: 1 });
    const body = uploadBody({ uploadId: "85045" });
    expect((await postWebhook(source, { deliveryId: "r-1", body })).status).toBe(200);
    await settle(source, target);
    expect(edc.sent.map((r) => r.body)).toEqual([body]);

    // Two days later: archived (its day is over), its body pruned in the ledger, its dispatch pruned in the outbox.
    vi.setSystemTime(T0 + 2 * DAY);
    await settle(source, target);
    expect((await ledgerOf(source).get("r-1"))?.bodyPrunedAt).not.toBeNull();
    expect(await outboxOf(target).getDispatch(source, "r-1")).toBeNull();

    const replay = await admin(`/deliveries/${source}/r-1/replay`, { method: "POST" });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ source, deliveryId: "r-1", targets: [{ target, replayed: true, payloadFrom: "archive" }] });
    await settle(source, target);
    expect(edc.sent.map((r) => r.body)).toEqual([body, body]);
    expect(edc.sent[1]!.headers["webhook-id"] ?? edc.sent[1]!.headers["x-actigraph-delivery"]).toBe("r-1");

    // The outbox prunes the new dispatch too, and the segment is gone from R2: the replay says why it cannot be done.
    vi.setSystemTime(T0 + 4 * DAY);
    await settle(source, target);
    expect(await outboxOf(target).getDispatch(source, "r-1")).toBeNull();
    await env.ARCHIVE.delete(segmentKeys(source, 1, 1).segment);
    const refused = await admin(`/deliveries/${source}/r-1/replay`, { method: "POST" });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({
      error: "conflict",
      message: `The body of delivery r-1 was pruned on ${new Date(T0 + 2 * DAY).toISOString()} and cannot be read back from the archive: the archive has no object ${segmentKeys(source, 1, 1).segment}.`,
    });
  });
});
