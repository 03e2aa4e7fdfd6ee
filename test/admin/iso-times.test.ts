import { describe, expect, it } from "vitest";
import { admin } from "../support/helpers";
import { completeRequests, newPullSource, newTargetOf, settle, triggerRaw, useFakeCentrePoint, useTestHooks } from "../support/pull";
import { nonIsoSchemas, nonIsoTimes } from "../support/iso-times";

/** One time format across the admin API: ISO 8601 strings, never epoch ms (README "Upgrading"). */

const { advance } = useTestHooks(["log", "warn"]);

describe("times in the admin API", () => {
  it("are ISO 8601 strings in every answer the OpenAPI document describes", async () => {
    const doc = (await (await admin("/openapi.json")).json()) as Parameters<typeof nonIsoSchemas>[0];
    expect(Object.keys(doc.paths).length).toBeGreaterThan(15);
    expect(nonIsoSchemas(doc)).toEqual([]);
  });

  it("are ISO 8601 strings in the answers: deliveries with dispatches, attempts, enrichment, raw-data requests and downloads; targets; sources", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const t = await newTargetOf(source, { enrich: ["datafiles"], events: ["data_retrieval.*"] });
    const trigger = await triggerRaw(source, 9401, "2099-12-11T00:00:00Z", "2099-12-11T01:00:00Z");
    const [done] = await completeRequests(fake, source, advance);
    await settle(source, [t]);
    const link = JSON.parse(sent.find((s) => s.url.endsWith(`/${t}`))!.body).data.enrichment.dataFiles[0].link as string;
    await (await import("cloudflare:workers")).exports.default.fetch(link, { headers: { "cf-connecting-ip": "192.0.2.45" }, redirect: "manual" });

    const answers: Record<string, unknown> = {};
    for (const path of [
      `/deliveries?source=${source}`,
      `/deliveries/${source}/${trigger}`,
      `/deliveries/${source}/${done!.deliveryId}`,
      `/targets/${t}/health`,
      `/targets/${t}/dead`,
      `/sources/${source}/raw-requests`,
      `/sources/${source}/downloads`,
      `/sources/${source}/handshakes`,
      `/sources/${source}/lifecycle`,
      `/sources/${source}/integrity`,
    ]) {
      const res = await admin(path);
      expect(res.status, path).toBe(200);
      answers[path] = await res.json();
    }
    const retried = await admin(`/deliveries/${source}/${done!.deliveryId}/enrichment/retry`, { method: "POST" });
    expect(retried.status).toBe(200);
    answers.retry = await retried.json();

    // The fixture reached every kind of time: a dispatch with its attempt, the enrichment job, a raw-data request, a download.
    const detail = answers[`/deliveries/${source}/${done!.deliveryId}`] as Record<string, any>;
    expect(detail.targets[0].dispatch.deliveredAt).toEqual(expect.any(String));
    expect(detail.targets[0].attempts[0].startedAt).toEqual(expect.any(String));
    expect(detail.pull.enrichment.job.createdAt).toEqual(expect.any(String));
    expect((answers[`/sources/${source}/raw-requests`] as { items: { queuedAt: unknown }[] }).items[0]!.queuedAt).toEqual(expect.any(String));
    expect((answers[`/sources/${source}/downloads`] as { items: { at: unknown }[] }).items[0]!.at).toBe(new Date(Date.now()).toISOString());
    expect(nonIsoTimes(answers)).toEqual([]);
  });
});
