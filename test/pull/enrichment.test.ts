import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { admin, ledgerOf } from "../support/helpers";
import { runDue, verifyFully } from "../support/ledger";
import { outboxOf } from "../support/outbox";
import {
  cpClientOf,
  envelopesTo,
  newPullSource,
  newTargetOf,
  pullerOf,
  push,
  settle,
  sqlOf,
  uploadBodyOf,
  useFakeCentrePoint,
  useTestHooks,
} from "../support/pull";

/**
 * Enrichment (src/pull/puller.ts, src/ledger/enrichment.ts): looked up once per event, stored beside
 * the record, composed per target at hand-off, waited for until a deadline or held, replayed as sent.
 */

const { advance } = useTestHooks(["log", "warn"]);

/** Backoff without jitter: every retry of the source's Puller comes 1 s later. */
async function noJitter(source: string): Promise<void> {
  await runInDurableObject(pullerOf(source), (instance) => {
    (instance as unknown as { random: () => number }).random = () => 0;
  });
}

/** Requests the fake answered on a path containing `part`. */
function calls(fake: ReturnType<typeof useFakeCentrePoint>["fake"], part: string): number {
  return fake.requests().filter((r) => r.path.toLowerCase().includes(part.toLowerCase())).length;
}

/** The delivery's detail from the admin API. */
async function detail(source: string, id: string): Promise<Record<string, any>> {
  const res = await admin(`/deliveries/${source}/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
}

describe("enrichment", () => {
  it("is looked up once per event for several targets, and each target gets only the facts it asked for", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const [bySubject, byBoth, plain] = [
      await newTargetOf(source, { enrich: ["subject"] }),
      await newTargetOf(source, { enrich: ["subject", "upload", "datafiles"] }),
      await newTargetOf(source),
    ];
    const id = await push(source, uploadBodyOf(2001, 90001));
    await settle(source, [bySubject, byBoth, plain]);

    expect(fake.subjectLookups("189", "2001")).toBe(1);
    expect(calls(fake, "/uploads/")).toBe(1);
    const [a] = envelopesTo(sent, bySubject);
    const [b] = envelopesTo(sent, byBoth);
    const [c] = envelopesTo(sent, plain);
    expect(a!.data.enrichment).toEqual({
      status: "complete",
      reasons: [],
      subject: { subjectId: "2001", subjectIdentifier: "SUBJ-2001", siteId: "12", siteIdentifier: "Site A", timezone: "America/New_York" },
    });
    // datafiles does not apply to an upload event: the target gets the two facts that do.
    expect(b!.data.enrichment).toMatchObject({
      status: "complete",
      subject: { subjectIdentifier: "SUBJ-2001" },
      upload: {
        uploadId: "90001",
        deviceSerial: "TAS1F39160337",
        firmware: "1.7.2",
        batteryVoltage: 4.12,
        sampleRateHz: 30,
        dateUploadedUtc: "2016-06-14T20:50:00.000Z",
        files: [{ id: "900010", fileType: "RAW", beginOfData: "2016-06-14T20:46:00.000Z", endOfData: "2016-06-14T20:47:00.000Z" }],
      },
    });
    expect(b!.data.enrichment.dataFiles).toBeUndefined();
    expect(c!.data.enrichment).toBeUndefined();
    for (const e of [a, b, c]) expect(e!.id).toBe(id);
  });

  it("is stored beside the record: the hash-chained envelope and the chain are unchanged", async () => {
    useFakeCentrePoint();
    const source = await newPullSource();
    const t = await newTargetOf(source, { enrich: ["subject"] });
    const id = await push(source, uploadBodyOf(2002, 90002));
    await settle(source, [t]);
    const record = await ledgerOf(source).get(id);
    expect(JSON.parse(record!.envelope).data.enrichment).toBeUndefined();
    expect(await verifyFully(ledgerOf(source))).toMatchObject({ ok: true, checked: 1 });
    const stored = await sqlOf(ledgerOf(source), "SELECT result, settled FROM enrichments WHERE delivery_id = ?", id);
    expect(stored).toHaveLength(1);
    expect(JSON.parse(stored[0]!.result as string)).toMatchObject({ settled: true, found: { subject: { subjectIdentifier: "SUBJ-2002" } } });
    expect((await detail(source, id)).pull.enrichment).toMatchObject({ state: "complete", facts: ["subject"], targets: [{ targetId: t, waiting: "handed" }] });
  });

  it("caches subjects for 24 hours: a second event of the subject is a cache hit, a day later it is looked up again", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource();
    const t = await newTargetOf(source, { enrich: ["subject"] });
    await push(source, uploadBodyOf(2003, 1));
    await settle(source, [t]);
    await push(source, uploadBodyOf(2003, 2));
    await settle(source, [t]);
    expect(fake.subjectLookups("189", "2003")).toBe(1);
    expect((await cpClientOf().summary()).subjects.hits).toBeGreaterThanOrEqual(1);
    advance(24 * 3_600_000 + 1_000);
    await push(source, uploadBodyOf(2003, 3));
    await settle(source, [t]);
    expect(fake.subjectLookups("189", "2003")).toBe(2);
  });

  it("shares one lookup between everyone asking for a subject while it is in flight", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource();
    const before = (await cpClientOf().summary()).subjects;
    const answers = await Promise.all(Array.from({ length: 20 }, () => cpClientOf().subject(source, "189", "2099")));
    expect(answers.every((a) => a.ok && a.value.subjectIdentifier === "SUBJ-2099")).toBe(true);
    expect(fake.subjectLookups("189", "2099")).toBe(1);
    const after = (await cpClientOf().summary()).subjects;
    expect(after.lookups - before.lookups).toBe(1);
    expect(after.coalesced - before.coalesced + (after.hits - before.hits)).toBe(19);
  });

  it("makes at most 50 subject lookups for a burst of 1,000 events of 50 subjects", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource({}, {});
    const t = await newTargetOf(source, { enrich: ["subject"] });
    const subjects = Array.from({ length: 50 }, (_, i) => 3000 + i);
    for (let batch = 0; batch < 20; batch++)
      await Promise.all(
        subjects.map((s, i) => push(source, JSON.stringify({ status: "started", uploadId: String(batch * 50 + i), studyId: "189", subjectId: String(s) }))),
      );
    for (let i = 0; i < 6; i++) await runDurableObjectAlarm(ledgerOf(source));
    expect((await pullerOf(source).summary()).pending).toBe(1000);
    await runDurableObjectAlarm(pullerOf(source));
    expect((await pullerOf(source).summary()).pending).toBe(0);
    const lookups = subjects.reduce((n, s) => n + fake.subjectLookups("189", String(s)), 0);
    expect(lookups).toBeLessThanOrEqual(50);
    expect(lookups).toBeGreaterThanOrEqual(50);
    for (let i = 0; i < 6; i++) await runDurableObjectAlarm(ledgerOf(source));
    for (let i = 0; i < 3; i++) await runDurableObjectAlarm(outboxOf(t));
    const envelopes = envelopesTo(sent, t);
    expect(new Set(envelopes.map((e) => e.id)).size).toBe(1000);
    expect(envelopes.every((e) => e.data.enrichment.status === "complete")).toBe(true);
  }, 60_000);

  it("retries a failing API with backoff and sends the event after its deadline with status failed and the reason", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const t = await newTargetOf(source, { enrich: ["subject"], enrichDeadlineMs: 60_000 });
    fake.failNext(1000, { status: 503, path: "/centrepoint/v3/Studies/189/Subjects" });
    await noJitter(source);
    const id = await push(source, uploadBodyOf(2004, 1));
    await runDurableObjectAlarm(ledgerOf(source));
    for (let i = 0; i < 3; i++) {
      await runDurableObjectAlarm(pullerOf(source));
      advance(2_000);
    }
    expect(fake.subjectLookups("189", "2004")).toBe(0); // every request failed before the route
    expect(calls(fake, "/subjects/2004")).toBe(3);
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(t));
    expect(envelopesTo(sent, t)).toEqual([]); // waits: the deadline has not passed
    expect((await detail(source, id)).pull.enrichment).toMatchObject({ state: "pending", job: { attempts: 3 }, targets: [{ waiting: "until_deadline" }] });

    advance(60_000);
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(t));
    const [sentEnvelope] = envelopesTo(sent, t);
    expect(sentEnvelope!.data.enrichment.status).toBe("failed");
    expect(sentEnvelope!.data.enrichment.reasons[0]).toContain("subject: CentrePoint answered HTTP 503");
    // The lookup stops at the deadline: its next attempt settles it as failed.
    await runDurableObjectAlarm(pullerOf(source));
    expect((await detail(source, id)).pull.enrichment).toMatchObject({ state: "failed", stored: { settled: true } });
    expect((await pullerOf(source).summary()).outcomes).toEqual({ failed: 1 });
  });

  it("holds a target with enrichRequired, visibly, until the lookup succeeds", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const held = await newTargetOf(source, { enrich: ["subject"], enrichRequired: true });
    fake.failNext(1000, { status: 500, path: "/centrepoint/v3/Studies/189/Subjects" });
    await noJitter(source);
    const id = await push(source, uploadBodyOf(2005, 1));
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(pullerOf(source));
    advance(3 * 3_600_000);
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(held));
    expect(envelopesTo(sent, held)).toEqual([]);
    const waiting = await detail(source, id);
    expect(waiting.pull.enrichment).toMatchObject({ state: "pending", targets: [{ targetId: held, waiting: "held", deadlineAt: null }] });
    expect(waiting.pull.enrichment.stored.errors.subject).toContain("HTTP 500");
    expect((await ledgerOf(source).pullStats()).held).toBe(1);

    fake.clearFaults();
    await runDurableObjectAlarm(pullerOf(source));
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(held));
    const [out] = envelopesTo(sent, held);
    expect(out!.data.enrichment).toMatchObject({ status: "complete", subject: { subjectIdentifier: "SUBJ-2005" } });
    expect((await ledgerOf(source).pullStats()).held).toBe(0);
  });

  it("holds a target with enrichRequired until an operator releases it, then sends what was found, never dropping it", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const held = await newTargetOf(source, { enrich: ["subject"], enrichRequired: true });
    fake.failNext(1000, { status: 404, path: "/centrepoint/v3/Studies/189/Subjects" }); // final: no retry
    const id = await push(source, uploadBodyOf(2006, 1));
    await settle(source, [held]);
    expect(envelopesTo(sent, held)).toEqual([]);
    expect((await detail(source, id)).pull.enrichment).toMatchObject({ state: "failed", targets: [{ waiting: "held" }] });

    const res = await admin(`/deliveries/${source}/${id}/enrichment/release`, { method: "POST", headers: { "x-audit-reason": "site confirmed" } });
    expect(await res.json()).toEqual({ source, deliveryId: id, released: 1 });
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(held));
    const [out] = envelopesTo(sent, held);
    expect(out!.data.enrichment).toMatchObject({ status: "failed", reasons: [expect.stringContaining("HTTP 404")] });
    expect((await detail(source, id)).pull.enrichment).toMatchObject({ releasedAt: expect.stringMatching(/Z$/), targets: [{ waiting: "handed" }] });
    // A second release finds nothing waiting.
    expect(
      await (await admin(`/deliveries/${source}/${id}/enrichment/release`, { method: "POST", headers: { "x-audit-reason": "site confirmed" } })).json(),
    ).toMatchObject({ released: 0 });
  });

  it("is reused by a replay: the same envelope is sent again and nothing is looked up", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const t = await newTargetOf(source, { enrich: ["subject", "upload"] });
    const id = await push(source, uploadBodyOf(2007, 1));
    await settle(source, [t]);
    const before = fake.requests().length;
    const replay = await admin(`/deliveries/${source}/${id}/replay`, { method: "POST" });
    expect(replay.status).toBe(200);
    await runDurableObjectAlarm(outboxOf(t));
    const bodies = sent.filter((s) => s.url.endsWith(`/${t}`)).map((s) => s.body);
    expect(bodies).toHaveLength(2);
    expect(bodies[1]).toBe(bodies[0]);
    expect(fake.requests().length).toBe(before);
  });

  it("is reused by a replay after the target's outbox pruned the dispatch: the ledger hands it again, enriched as before", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const t = await newTargetOf(source, { enrich: ["subject"], retentionDays: 1 });
    const id = await push(source, uploadBodyOf(2012, 2));
    await settle(source, [t]);
    advance(2 * 86_400_000);
    await runDue(outboxOf(t)); // its retention prunes the delivered dispatch
    expect(await outboxOf(t).getDispatch(source, id)).toBeNull();
    const before = fake.requests().length;
    const replay = await admin(`/deliveries/${source}/${id}/replay`, { method: "POST" });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ targets: [{ target: t, replayed: true, payloadFrom: "ledger" }] });
    await runDue(outboxOf(t));
    const [first, again] = envelopesTo(sent, t);
    expect(again).toBeDefined();
    expect(again!.data.enrichment).toEqual(first!.data.enrichment);
    expect(again!.data.enrichment).toMatchObject({ status: "complete", subject: { subjectIdentifier: "SUBJ-2012" } });
    expect(fake.requests().length).toBe(before);
  });

  it("is looked up again on 'retry enrichment': targets still waiting get the new result, events already sent keep theirs", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const early = await newTargetOf(source, { enrich: ["subject"], enrichDeadlineMs: 1_000 });
    const held = await newTargetOf(source, { enrich: ["subject"], enrichRequired: true });
    fake.failNext(1, { status: 404, path: "/centrepoint/v3/Studies/189/Subjects" });
    const id = await push(source, uploadBodyOf(2008, 1));
    await settle(source, [early, held]);
    const [first] = envelopesTo(sent, early);
    expect(first!.data.enrichment.status).toBe("failed");
    expect(envelopesTo(sent, held)).toEqual([]);

    const retry = await admin(`/deliveries/${source}/${id}/enrichment/retry`, { method: "POST" });
    expect(await retry.json()).toMatchObject({ source, deliveryId: id, state: "pending", facts: ["subject"] });
    await settle(source, [early, held]);
    expect(fake.subjectLookups("189", "2008")).toBe(1);
    expect(envelopesTo(sent, held)[0]!.data.enrichment.status).toBe("complete");
    expect((await detail(source, id)).pull.enrichment.state).toBe("complete");
    // The early target keeps what it was sent: a replay resends the same envelope.
    await admin(`/deliveries/${source}/${id}/replay`, { method: "POST", body: JSON.stringify({ target: early }) });
    await runDurableObjectAlarm(outboxOf(early));
    const again = envelopesTo(sent, early);
    expect(again).toHaveLength(2);
    expect(again[1]).toEqual(first);
  });

  it("answers 409 to 'retry enrichment' of a delivery no target wanted enriched, and 404 to an unknown one", async () => {
    useFakeCentrePoint();
    const source = await newPullSource();
    const t = await newTargetOf(source);
    const id = await push(source, uploadBodyOf(2009, 1));
    await settle(source, [t]);
    expect((await admin(`/deliveries/${source}/${id}/enrichment/retry`, { method: "POST" })).status).toBe(409);
    expect((await admin(`/deliveries/${source}/nope/enrichment/retry`, { method: "POST" })).status).toBe(404);
    expect((await admin(`/deliveries/${source}/nope/enrichment/release`, { method: "POST", headers: { "x-audit-reason": "site confirmed" } })).status).toBe(
      404,
    );
    expect((await detail(source, id)).pull).toEqual({ enrichment: null, rawRequests: [], completes: null, downloads: [] });
  });

  it("fails at once, with the reason, for a source without a centrepoint block", async () => {
    const { sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const t = await newTargetOf(source, { enrich: ["subject"], enrichRequired: false });
    const { putSource } = await import("../support/helpers");
    await putSource(source, { allowedIps: ["*"] });
    await push(source, uploadBodyOf(2010, 1));
    await settle(source, [t]);
    const [out] = envelopesTo(sent, t);
    expect(out!.data.enrichment).toEqual({ status: "failed", reasons: ["subject: the source has no centrepoint block (no API client to look up with)"] });
  });
});
