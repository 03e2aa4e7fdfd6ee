import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { linkWarnings } from "../../src/admin/service/pull";
import type { Listed } from "../../src/config/store";
import type { TargetConfig } from "../../src/config/schemas";
import { parseConfig } from "../../src/config/store";
import { csrfOf, get, postForm, signIn } from "../support/session";
import { admin, ledgerOf, putSource } from "../support/helpers";
import { outboxOf } from "../support/outbox";
import {
  completeRequests,
  newPullSource,
  newTargetOf,
  pullerOf,
  push,
  rawProcessingBody,
  runQueue,
  settle,
  triggerRaw,
  uploadBodyOf,
  useFakeCentrePoint,
  useTestHooks,
} from "../support/pull";

/** The pull side in the admin API, the OpenAPI document, /admin/metrics and the dashboard. */

const { advance } = useTestHooks(["log", "warn"]);

/** Signs in and opens a page (apostrophes unescaped). */
async function open(path: string, cookie?: string): Promise<{ cookie: string; html: string; status: number }> {
  const session = cookie ?? (await signIn());
  const res = await get(path, session);
  return { cookie: session, html: (await res.text()).replaceAll("&#39;", "'").replaceAll("&quot;", '"'), status: res.status };
}

describe("admin API", () => {
  it("lists the pull routes in the OpenAPI document", async () => {
    const doc = (await (await admin("/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    for (const [path, method] of [
      ["/admin/deliveries/{source}/{id}/enrichment/retry", "post"],
      ["/admin/deliveries/{source}/{id}/enrichment/release", "post"],
      ["/admin/sources/{id}/raw-requests", "get"],
      ["/admin/sources/{id}/downloads", "get"],
    ] as const)
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    expect(JSON.stringify(doc.paths["/admin/deliveries/{source}/{id}"])).toContain("triggerDeliveryId");
    expect(doc.paths["/files/{source}/{fileId}"]).toBeUndefined();
  });

  it("refuses raw-request lists of unknown sources, sources without a centrepoint block and unknown states", async () => {
    const plain = await newPullSource();
    await putSource(plain, { allowedIps: ["*"] });
    expect((await admin("/sources/no-such-source/raw-requests")).status).toBe(404);
    expect((await admin(`/sources/${plain}/raw-requests`)).status).toBe(400);
    expect((await admin(`/sources/${plain}/raw-requests?state=bogus`)).status).toBe(400);
    expect((await admin("/sources/no-such-source/downloads")).status).toBe(404);
    expect(await (await admin(`/sources/${plain}/downloads`)).json()).toEqual({ source: plain, items: [] });
  });

  it("exports API calls by endpoint and status, enrichment outcomes, held events, queued and active requests, and downloads", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const t = await newTargetOf(source, { enrich: ["subject", "datafiles"] });
    await newTargetOf(source, { enrich: ["subject"], enrichRequired: true, events: ["upload.*"] });
    fake.failNext(1, { status: 404, path: "/centrepoint/v3/Studies/189/Subjects/9002" });
    await push(source, uploadBodyOf(9001, 1));
    await push(source, uploadBodyOf(9002, 1));
    await triggerRaw(source, 9003, "2099-12-10T00:00:00Z", "2099-12-10T01:00:00Z");
    await settle(source, [t]);
    const metrics = await (await admin("/metrics")).text();
    // Subjects 9001 and 9003 (the raw_processing event's subject: the first target wants it too), and 9002's 404.
    expect(metrics).toContain(
      'relay_centrepoint_api_requests_total{method="GET",endpoint="/centrepoint/v3/Studies/{studyId}/Subjects/{subjectId}",status="200"} 2',
    );
    expect(metrics).toContain(
      'relay_centrepoint_api_requests_total{method="GET",endpoint="/centrepoint/v3/Studies/{studyId}/Subjects/{subjectId}",status="404"} 1',
    );
    expect(metrics).toContain('relay_centrepoint_api_requests_total{method="POST",endpoint="/dataretrieval/v3/RawActivityRequests",status="200"} 1');
    expect(metrics).toContain(`relay_enrichments_total{source="${source}",outcome="complete"} 2`);
    expect(metrics).toContain(`relay_enrichments_total{source="${source}",outcome="failed"} 1`);
    expect(metrics).toContain(`relay_enrichment_held{source="${source}"} 1`);
    expect(metrics).toMatch(
      /relay_raw_requests\{client="http:\/\/127\.0\.0\.1:9 http:\/\/127\.0\.0\.1:9 TEST_CP_CLIENT_ID TEST_CP_CLIENT_SECRET",state="active"\} 1/,
    );
    expect(metrics).toMatch(/relay_raw_requests\{client="[^"]+",state="queued"\} 0/);
    expect(metrics).toMatch(/relay_subject_lookups_total\{client="[^"]+",result="lookup"\} \d+/);
    expect(metrics).not.toContain("relay_file_downloads_total{");
    await completeRequests(fake, source, advance);
    await settle(source, [t]);
  });
});

describe("dashboard", () => {
  it("shows a held event's enrichment with the reason, and releases it from a CSRF-protected form", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource();
    const held = await newTargetOf(source, { enrich: ["subject"], enrichRequired: true });
    fake.failNext(1, { status: 404, path: "/centrepoint/v3/Studies/189/Subjects" });
    const id = await push(source, uploadBodyOf(9101, 1));
    await settle(source, [held]);
    const page = await open(`/admin/ui/deliveries/${source}/${id}`);
    expect(page.html).toContain("Enrichment");
    expect(page.html).toContain(`Held: ${held} requires enrichment`);
    expect(page.html).toContain("HTTP 404");
    expect(page.html).toContain(`action="/admin/ui/deliveries/${source}/${id}/enrichment/retry"`);
    expect(page.html).toContain(`action="/admin/ui/deliveries/${source}/${id}/enrichment/release"`);

    // Without the session's CSRF token the form is refused and nothing moves.
    expect((await postForm(`/admin/ui/deliveries/${source}/${id}/enrichment/release`, {}, { cookie: page.cookie })).status).toBe(403);
    expect((await ledgerOf(source).pullStats()).held).toBe(1);
    const res = await postForm(
      `/admin/ui/deliveries/${source}/${id}/enrichment/release`,
      { _csrf: csrfOf(page.html), reason: "site confirmed" },
      { cookie: page.cookie },
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`/admin/ui/deliveries/${source}/${id}?done=released&released=1`);
    expect((await open(res.headers.get("location")!, page.cookie)).html).toContain("Released: 1 target get the event now");
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(held));
    expect(sent.filter((s) => s.url.endsWith(`/${held}`))).toHaveLength(1);
  });

  it("retries enrichment from its button", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newPullSource();
    const t = await newTargetOf(source, { enrich: ["subject"], enrichRequired: true });
    fake.failNext(1, { status: 404, path: "/centrepoint/v3/Studies/189/Subjects" });
    const id = await push(source, uploadBodyOf(9102, 1));
    await settle(source, [t]);
    const page = await open(`/admin/ui/deliveries/${source}/${id}`);
    const res = await postForm(`/admin/ui/deliveries/${source}/${id}/enrichment/retry`, { _csrf: csrfOf(page.html) }, { cookie: page.cookie });
    expect(res.headers.get("location")).toBe(`/admin/ui/deliveries/${source}/${id}?done=enrichment-retry`);
    await settle(source, [t]);
    const after = await open(`/admin/ui/deliveries/${source}/${id}`, page.cookie);
    expect(after.html).toContain("complete");
    expect(after.html).not.toContain("Held:");
    expect(fake.subjectLookups("189", "9102")).toBe(1);
  });

  it("shows raw-data requests on both deliveries' pages, the correlation, and the downloads", async () => {
    const { fake, sent } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const t = await newTargetOf(source, { enrich: ["datafiles"], events: ["data_retrieval.*"] });
    const trigger = await triggerRaw(source, 9201, "2099-12-11T00:00:00Z", "2099-12-11T01:00:00Z");
    const [done] = await completeRequests(fake, source, advance);
    await settle(source, [t]);
    const link = JSON.parse(sent.find((s) => s.url.endsWith(`/${t}`))!.body).data.enrichment.dataFiles[0].link as string;
    await (await import("cloudflare:workers")).exports.default.fetch(link, { headers: { "cf-connecting-ip": "192.0.2.44" }, redirect: "manual" });

    const cookie = await signIn();
    const first = await open(`/admin/ui/deliveries/${source}/${trigger}`, cookie);
    expect(first.html).toContain("Raw-data requests");
    expect(first.html).toContain(done!.trackingId);
    expect(first.html).toContain(`/admin/ui/deliveries/${source}/${done!.deliveryId}`);
    const second = await open(`/admin/ui/deliveries/${source}/${done!.deliveryId}`, cookie);
    expect(second.html).toContain("This event completes the raw-data request the relay made for delivery");
    expect(second.html).toContain(`/admin/ui/deliveries/${source}/${trigger}`);
    expect(second.html).toContain("File downloads");
    expect(second.html).toContain("192.0.2.44");
  });

  it("shows queued and active raw-data requests, enrichment failures and reported requests on the overview", async () => {
    const { fake } = useFakeCentrePoint({ completionDelayMs: 24 * 3_600_000 });
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const t = await newTargetOf(source, { enrich: ["subject"], events: ["upload.*"] });
    fake.failNext(1, { status: 404, path: "/centrepoint/v3/Studies/189/Subjects" });
    await push(source, uploadBodyOf(9301, 1));
    await settle(source, [t]);
    await triggerRaw(source, 9302, "2099-12-12T00:00:00Z", "2099-12-12T01:00:00Z");
    const made = fake.rawRequests().at(-1)!;
    fake.cancelRequest(made.id);
    advance(15 * 60_000);
    await runQueue();
    await push(source, rawProcessingBody(9303, "2099-12-12T00:00:00Z", "2099-12-12T01:00:00Z"), "raw_processing_complete");
    await runDurableObjectAlarm(ledgerOf(source));
    const { html } = await open("/admin/");
    // 9302's request ended (reported); 9303's is queued until the client's next run.
    expect(html).toMatch(/<span class="n">0 \/ 1<\/span><span class="l">raw-data requests active \/ queued<\/span>/);
    expect(html).toMatch(/<div class="stat warn"><span class="n">[1-9]\d*<\/span><span class="l">enrichment failures<\/span>/); // this file's other sources' too
    expect(html).toContain(`Raw-data request ${made.id} (source ${source}, subject 9302): error`);
    expect(html).toContain(`Source ${source}: 1 enrichment failed`);
    expect((await pullerOf(source).summary()).outcomes.failed).toBe(1);
  });
});

describe("link warnings", () => {
  const wanting: Listed<TargetConfig>[] = [
    { id: "edc", valid: true, config: (parseConfig("target", { url: "https://e.example/x", enrich: ["datafiles"] }) as { value: TargetConfig }).value },
  ];

  it("say so when targets want data files and FILE_LINK_SECRET or RELAY_PUBLIC_URL is not set, and nothing otherwise", () => {
    expect(linkWarnings(env, wanting)).toEqual([]);
    const warnings = linkWarnings({ ...env, FILE_LINK_SECRET: undefined, RELAY_PUBLIC_URL: "" }, wanting);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain("FILE_LINK_SECRET is not set: edc want data files");
    expect(warnings[1]).toContain("RELAY_PUBLIC_URL is not set: the file links edc receive are relative");
    expect(linkWarnings({ ...env, FILE_LINK_SECRET: undefined }, [])).toEqual([]);
  });
});
