import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DOWNLOAD_URL_TTL_MS } from "../../harness/fake-centrepoint";
import { RELAY_LIMIT_PER_MINUTE, WINDOW_MS } from "../../src/providers/centrepoint/api/budget";
import { admin, ledgerOf } from "../support/helpers";
import { PUBLISHED_GUID } from "../support/centrepoint-api";
import { reconcilerOf } from "../support/reconcile";
import {
  completeRequests,
  envelopesTo,
  newPullSource,
  newTargetOf,
  pullerOf,
  settle,
  triggerRaw,
  useFakeCentrePoint,
  useTestHooks,
  busiestWindow,
} from "../support/pull";

/**
 * The relay against a fake CentrePoint that answers as the published documentation shows
 * (test/support/centrepoint-api.ts): GUID data-file ids and seven-digit `+00:00` dates end to end,
 * and CentrePoint's 500 requests a minute per client address never reached under the relay's
 * budget (450 a minute per API client, src/providers/centrepoint/api/budget.ts).
 */

const { advance } = useTestHooks(["log", "warn"]);

describe("CentrePoint as published, end to end", () => {
  it("a completed request's files: GUID ids, CentrePoint's expiry as UTC with Z, and the relay link to a GUID file redirects", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const target = await newTargetOf(source, { enrich: ["datafiles"] });
    await triggerRaw(source, 6001, "2099-12-20T00:00:00Z", "2099-12-20T01:00:00Z");
    await completeRequests(fake, source, advance);
    await settle(source, [target]);
    const [request] = fake.rawRequests();
    const envelope = envelopesTo(sent, target).find((e) => e.type === "com.actigraph.centrepoint.data_retrieval.completed");
    const files = envelope!.data.enrichment.dataFiles as { id: string; expiresAt: string; link: string }[];
    expect(files).toHaveLength(2);
    expect(files.map((f) => f.id)).toEqual(request!.dataFileIds);
    for (const f of files) {
      expect(f.id).toMatch(PUBLISHED_GUID);
      // CentrePoint wrote 2100-01-…T…:….ddd0000+00:00 (30 days after completion); the event says it in UTC with Z.
      expect(f.expiresAt).toBe(new Date(request!.completedAt! + 30 * 86_400_000).toISOString());
    }
    const res = await exports.default.fetch(files[0]!.link, { headers: { "cf-connecting-ip": "198.51.100.7" }, redirect: "manual" });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get("location")!);
    expect(location.host).toBe("blob.fake.invalid");
    expect(Date.parse(location.searchParams.get("se")!) - Date.now()).toBe(DOWNLOAD_URL_TTL_MS);
  });

  it("the relay's budget never trips CentrePoint's 500 a minute: a reconciliation of 5,000 history items and the enrichment of 1,000 events", async () => {
    const { fake } = useFakeCentrePoint(); // the published limit: 500 a minute per client address, every call here from one
    const source = await newPullSource();
    await newTargetOf(source, { enrich: ["subject", "upload"] });
    // 1,000 uploads of 1,000 subjects, each sent 5 times and refused each time: 5,000 history items, 1,000 missing deliveries.
    for (let n = 0; n < 1_000; n++) {
      const deliveryId = `5a1e7c00-0000-4000-8000-${String(n).padStart(12, "0")}`;
      const body = JSON.stringify({ status: "completed", uploadId: String(300_000 + n), studyId: "189", subjectId: String(30_000 + n) });
      for (let attempt = 0; attempt < 5; attempt++) fake.recordDelivery({ event: "upload", body, deliveryId, responseCode: 503 });
    }
    // The Reconciler's waits (Retry-After, the budget) move the controlled clock instead of sleeping.
    await runInDurableObject(reconcilerOf(source), (instance) => {
      (instance as unknown as { sleep: (ms: number) => Promise<void> }).sleep = async (ms) => void advance(ms);
    });

    let report = (await (await admin(`/sources/${source}/reconcile`, { method: "POST" })).json()) as Record<string, any>;
    for (let i = 0; i < 100 && !report.complete; i++) {
      advance(1_000);
      await runDurableObjectAlarm(reconcilerOf(source));
      report = ((await (await admin(`/sources/${source}/reconcile`)).json()) as { items: Record<string, any>[] }).items[0]!;
    }
    expect(report).toMatchObject({ complete: true, outcome: "ok", scanned: 5_000, backfilled: 1_000 });

    // Enrichment: the ledger hands every backfilled event to the Puller, which looks each up under the budget.
    let pending = Infinity;
    for (let i = 0; i < 200 && pending > 0; i++) {
      await runDurableObjectAlarm(ledgerOf(source));
      await runDurableObjectAlarm(pullerOf(source));
      pending = (await pullerOf(source).summary()).pending;
      advance(5_000);
    }
    expect(pending).toBe(0);

    const calls = fake.requests();
    const uploads = calls.filter((r) => /\/uploads\/\d+$/i.test(r.path) && r.status === 200).length;
    const subjects = calls.filter((r) => /\/subjects\/\d+$/i.test(r.path) && r.status === 200).length;
    const history = calls.filter((r) => r.path.endsWith("/history") && r.status === 200).length;
    expect({ uploads, subjects, history }).toEqual({ uploads: 1_000, subjects: 1_000, history: 50 });
    // The budget was what held the pace: some minute was filled to it, none past CentrePoint's limit.
    const busiest = busiestWindow(calls.map((r) => r.at));
    expect(busiest).toBeGreaterThan(0.9 * RELAY_LIMIT_PER_MINUTE);
    expect(busiest).toBeLessThanOrEqual(RELAY_LIMIT_PER_MINUTE);
    expect(fake.rateLimited()).toBe(0);
    expect(calls.filter((r) => r.status === 429)).toEqual([]);
  }, 300_000);
});
