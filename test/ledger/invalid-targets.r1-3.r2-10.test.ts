import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { admin, freshId, ledgerOf, postWebhook, putSource, putTarget } from "../support/helpers";
import { expectLedgerCountersMatchRows } from "../support/ledger";
import { clockForEachTest } from "../support/clock";
import { fakeTarget, fireAlarm, outboxOf, sqlIn } from "../support/outbox";
import { envelopesTo, newPullSource, push, settle, uploadBodyOf, useFakeCentrePoint } from "../support/pull";

/**
 * Review finding 3: events that arrived while a target's document was invalid were never planned
 * for it. Now they are planned and held; once the document is fixed, those its filter wants are
 * delivered and the rest are marked not wanted (never sent).
 */

clockForEachTest({ quiet: [] });

async function targetState(source: string, id: string, target: string) {
  const res = await admin(`/deliveries/${source}/${id}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { targets: { target: string; dispatch: { state: string } | null }[] };
  return body.targets.find((t) => t.target === target)?.dispatch?.state ?? null;
}

async function setup() {
  const source = freshId();
  const target = freshId("t");
  await putSource(source);
  // Invalid: events must be a list of kind globs.
  await putTarget(target, { url: "https://edc.example/hooks", events: "upload.completed" });
  const edc = fakeTarget();
  vi.spyOn(console, "warn").mockImplementation(() => undefined);
  const id = crypto.randomUUID();
  expect((await postWebhook(source, { deliveryId: id })).status).toBe(200);
  await runDurableObjectAlarm(ledgerOf(source)); // hand-off to the outbox
  await fireAlarm(outboxOf(target)); // the outbox reads the invalid document and holds
  return { source, target, id, edc };
}

describe("a target whose document is invalid when events arrive", () => {
  it("holds those events instead of dropping them", async () => {
    const { source, target, id, edc } = await setup();
    expect(await targetState(source, id, target)).toBe("held");
    expect(edc.sent).toHaveLength(0);
  });

  it("delivers them once the document is fixed and its filter wants them", async () => {
    const { source, target, id, edc } = await setup();
    const fixed = await admin(`/targets/${target}`, { method: "PUT", body: JSON.stringify({ url: "https://edc.example/hooks", events: ["upload.*"] }) });
    expect(fixed.status).toBe(200);
    await fireAlarm(outboxOf(target));
    expect(edc.sent.map((s) => s.headers["webhook-id"])).toEqual([id]);
    expect(await targetState(source, id, target)).toBe("delivered");
  });

  it("marks them not wanted, and never sends them, when the fixed filter does not want them", async () => {
    const { source, target, id, edc } = await setup();
    const fixed = await admin(`/targets/${target}`, {
      method: "PUT",
      body: JSON.stringify({ url: "https://edc.example/hooks", events: ["daily_statistics.*"] }),
    });
    expect(fixed.status).toBe(200);
    await fireAlarm(outboxOf(target));
    expect(edc.sent).toHaveLength(0);
    expect(await targetState(source, id, target)).toBe("not_wanted");
    const health = (await (await admin(`/targets/${target}/health`)).json()) as { counts: Record<string, number> };
    expect(health.counts).toMatchObject({ not_wanted: 1, held: 0, pending: 0 });
    // A replay does not send it either.
    await admin(`/deliveries/${source}/${id}/replay`, { method: "POST", body: "{}" });
    await fireAlarm(outboxOf(target));
    expect(edc.sent).toHaveLength(0);
  });
});

describe("a target whose document is invalid when events arrive, fixed with enrich", () => {
  it("gets those events enriched: they are planned for enrichment when they are released (review 2, finding 10)", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const target = freshId("t");
    await putTarget(target, { url: `https://edc.example/${target}`, sources: [source], events: "upload.completed" }); // invalid
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const id = await push(source, uploadBodyOf(2401, 94001));
    await runDurableObjectAlarm(ledgerOf(source));
    await fireAlarm(outboxOf(target));
    expect(await targetState(source, id, target)).toBe("held");

    const fixed = await admin(`/targets/${target}`, {
      method: "PUT",
      body: JSON.stringify({ url: `https://edc.example/${target}`, sources: [source], enrich: ["subject"], enrichRequired: true }),
    });
    expect(fixed.status).toBe(200);
    await fireAlarm(outboxOf(target)); // the filter wants it: planned for enrichment through the ledger, not sent as it is
    expect(envelopesTo(sent, target)).toEqual([]);
    const waiting = (await (await admin(`/deliveries/${source}/${id}`)).json()) as { pull: { enrichment: { targets: unknown[] } } };
    expect(waiting.pull.enrichment.targets).toMatchObject([{ targetId: target, facts: ["subject"], waiting: "held" }]);
    expect((await admin(`/targets/${target}/resume`, { method: "POST" })).status).toBe(200); // a resume does not send it unenriched either
    await fireAlarm(outboxOf(target));
    expect(envelopesTo(sent, target)).toEqual([]);
    await settle(source, [target]); // the Puller looks the subject up; the ledger hands the enriched event off
    expect(fake.subjectLookups("189", "2401")).toBe(1);
    const envelopes = envelopesTo(sent, target);
    expect(envelopes).toHaveLength(1);
    expect(envelopes[0]!.id).toBe(id);
    expect(envelopes[0]!.data.enrichment).toMatchObject({ status: "complete", subject: { subjectIdentifier: "SUBJ-2401" } });
    expect(await targetState(source, id, target)).toBe("delivered");
    // The counters kept on write still agree with the rows, in the ledger and in the outbox.
    await expectLedgerCountersMatchRows(ledgerOf(source));
    const [states, counters] = await Promise.all([
      sqlIn(outboxOf(target), "SELECT 'state:' || state AS name, COUNT(*) AS n FROM dispatches GROUP BY state"),
      sqlIn(outboxOf(target), "SELECT name, value AS n FROM counters WHERE name LIKE 'state:%' AND value != 0"),
    ]);
    expect(counters).toEqual(states);
  });
});
