import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { admin, freshId, ledgerOf, postWebhook, putSource } from "../support/helpers";
import { clockForEachTest } from "../support/clock";

/**
 * Review finding 6: with `allowedIps: ["*"]` anyone could fill a ledger with handshake rows of any
 * size, forever. Stored header values are cut to 1,024 characters and the handshake log keeps the
 * newest 10,000 rows, counting those dropped.
 */

clockForEachTest({ quiet: [] });

function handshake(source: string, n: number) {
  const huge = `${n}-`.padEnd(10_000, "x");
  return postWebhook(source, {
    event: "validation",
    deliveryId: huge,
    ip: "198.51.100.7",
    sign: false,
    body: JSON.stringify({ WebhookId: huge, ValidationCode: `code-${n}` }),
    headers: { "x-actigraph-hook-secret": `code-${n}`, "x-actigraph-webhook-id": huge },
  });
}

describe("a flood of oversized unauthenticated handshakes", () => {
  it("stores bounded rows of bounded size, keeps the newest and counts the dropped", async () => {
    const source = freshId();
    await putSource(source, { allowedIps: ["*"] });
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const ledger = ledgerOf(source);
    // The production cap is 10,000 rows; a smaller one shows the trimming within the test's time.
    await runInDurableObject(ledger, (instance) => void ((instance as unknown as { handshakeCap: number }).handshakeCap = 100));
    for (let n = 1; n <= 1000; n++) expect((await handshake(source, n)).status).toBe(200);
    const stored = await runInDurableObject(ledger, (_i, state) =>
      state.storage.sql
        .exec(
          "SELECT COUNT(*) AS n, MAX(length(webhook_id)) AS w, MAX(length(delivery_id)) AS d, SUM(length(webhook_id) + length(delivery_id)) AS bytes FROM handshakes",
        )
        .one(),
    );
    expect(stored.n).toBe(100);
    expect(stored.w).toBeLessThanOrEqual(1024);
    expect(stored.d).toBeLessThanOrEqual(1024);
    expect(stored.bytes).toBeLessThanOrEqual(100 * 2 * 1024);
    const log = (await (await admin(`/sources/${source}/handshakes?limit=1`)).json()) as { items: { deliveryId: string }[]; dropped: number };
    expect(log.items[0]?.deliveryId.startsWith("1000-")).toBe(true);
    expect(log.dropped).toBe(900);
  }, 60_000);

  it("cuts every stored request header value of a delivery to 1,024 characters", async () => {
    const source = freshId();
    await putSource(source);
    const id = crypto.randomUUID();
    await postWebhook(source, { deliveryId: id, headers: { "x-trace": "t".repeat(5000) } });
    const detail = (await (await admin(`/deliveries/${source}/${id}`)).json()) as { headers: Record<string, string> };
    expect(detail.headers["x-trace"]!.length).toBeLessThanOrEqual(1024);
  });
});
