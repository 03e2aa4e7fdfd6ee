import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { admin, freshId, ledgerOf, postWebhook, putSource, putTarget, sign, uploadBody } from "../support/helpers";
import { clockForEachTest } from "../support/clock";
import { fakeTarget, fireAlarm, outboxOf } from "../support/outbox";

/**
 * Review finding 5: the signature covers only the body, so a captured body + signature re-posted
 * under a new delivery id is accepted; and the relay stored and forwarded the signature header,
 * handing out replayable requests.
 */

/** TEST_RAW_SIGNING_KEY of vitest.config.ts: a raw target's own key. */
const RAW_KEY = "test-raw-target-signing-key";

clockForEachTest({ quiet: [] });

type Detail = { headers: Record<string, string>; attention: string | null; sameBodyAs: string | null; envelope: Record<string, unknown> };

describe("the CentrePoint signature is never stored or forwarded", () => {
  it("stores X-ActiGraph-Signature redacted", async () => {
    const source = freshId();
    await putSource(source);
    const id = crypto.randomUUID();
    await postWebhook(source, { deliveryId: id });
    const detail = (await (await admin(`/deliveries/${source}/${id}`)).json()) as Detail;
    expect(detail.headers["x-actigraph-signature"]).toBe("[redacted]");
  });

  it("sends a raw target no CentrePoint signature, or a fresh one made with the target's own key", async () => {
    const source = freshId();
    const plain = freshId("raw");
    const signed = freshId("raw");
    await putSource(source);
    await putTarget(plain, { url: "https://plain.example/hooks", format: "raw" });
    await putTarget(signed, { url: "https://signed.example/hooks", format: "raw", centrepointSigning: { secretEnv: "TEST_RAW_SIGNING_KEY" } });
    const edc = fakeTarget();
    const body = uploadBody({ uploadId: "5001" });
    await postWebhook(source, { body });
    await runDurableObjectAlarm(ledgerOf(source));
    await fireAlarm(outboxOf(plain));
    await fireAlarm(outboxOf(signed));
    const toPlain = edc.sent.find((s) => s.url.startsWith("https://plain."))!;
    const toSigned = edc.sent.find((s) => s.url.startsWith("https://signed."))!;
    expect(toPlain.body).toBe(body);
    expect(Object.keys(toPlain.headers).map((h) => h.toLowerCase())).not.toContain("x-actigraph-signature");
    expect(toSigned.headers["x-actigraph-signature"]).toBe(await sign(body, RAW_KEY));
    expect(toSigned.headers["x-actigraph-signature"]).not.toBe(await sign(body));
  });
});

describe("a captured body re-posted under a new delivery id", () => {
  it("is recorded and forwarded, flagged with the earlier delivery's id in the record and the envelope", async () => {
    const source = freshId();
    const target = freshId("t");
    await putSource(source);
    await putTarget(target, { url: "https://edc.example/hooks" });
    const edc = fakeTarget();
    const body = uploadBody({ uploadId: "6001" });
    const first = crypto.randomUUID();
    const second = crypto.randomUUID();
    expect(await (await postWebhook(source, { deliveryId: first, body })).json()).toMatchObject({ status: "accepted" });
    expect(await (await postWebhook(source, { deliveryId: second, body })).json()).toMatchObject({ status: "accepted" });

    const original = (await (await admin(`/deliveries/${source}/${first}`)).json()) as Detail;
    expect(original.sameBodyAs).toBeNull();
    const copy = (await (await admin(`/deliveries/${source}/${second}`)).json()) as Detail;
    expect(copy.sameBodyAs).toBe(first);
    expect(copy.attention).toContain(first);
    expect(copy.envelope.samebodyas).toBe(first);

    await runDurableObjectAlarm(ledgerOf(source));
    await fireAlarm(outboxOf(target));
    const sent = edc.sent.map((s) => JSON.parse(s.body) as Record<string, unknown>);
    expect(sent.map((e) => e.id).sort()).toEqual([first, second].sort());
    expect(sent.find((e) => e.id === second)?.samebodyas).toBe(first);
    expect(sent.find((e) => e.id === first)).not.toHaveProperty("samebodyas");
  });

  it("is not flagged once the earlier delivery is older than the horizon", async () => {
    const source = freshId();
    await putSource(source);
    const body = uploadBody({ uploadId: "6002" });
    await postWebhook(source, { deliveryId: "early", body });
    vi.setSystemTime(Date.now() + 8 * 86_400_000);
    await postWebhook(source, { deliveryId: "late", body });
    const late = (await (await admin(`/deliveries/${source}/late`)).json()) as Detail;
    expect(late.sameBodyAs).toBeNull();
    expect(late.attention).toBeNull();
  });
});
