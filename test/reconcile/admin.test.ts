import { env, listDurableObjectIds } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { admin, freshId, putSource, putTarget } from "../support/helpers";
import { historyDelivery, newReconciledSource, reconcilerOf, useFakeCentrePoint, useTestHooks } from "../support/reconcile";

/** The admin API of reconciliation and the registration check (src/admin/routes/sources.ts), and its metrics. */

useTestHooks();

const ROUTES = [
  ["POST", "reconcile"],
  ["GET", "reconcile"],
  ["GET", "registration"],
] as const;

describe("refusals", () => {
  it("answers 404 for an unknown source and 400 for one without a centrepoint block, creating no Reconciler", async () => {
    const { fake } = useFakeCentrePoint();
    const plain = freshId();
    await putSource(plain);
    for (const [method, path] of ROUTES) {
      const unknown = await admin(`/sources/${freshId()}/${path}`, { method });
      expect(unknown.status, `${method} ${path}`).toBe(404);
      const res = await admin(`/sources/${plain}/${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(await res.json()).toMatchObject({ error: "bad_request", message: expect.stringContaining(`Source "${plain}" has no centrepoint block`) });
    }
    expect(fake.requests()).toEqual([]);
    const ids = await listDurableObjectIds(env.RECONCILER);
    expect(ids.some((id) => id.equals(env.RECONCILER.idFromName(plain)))).toBe(false);
  });

  it("answers 400 for a source document that is invalid", async () => {
    const id = freshId();
    await putSource(id, { centrepoint: { studyId: 189 } });
    const res = await admin(`/sources/${id}/reconcile`, { method: "POST" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "source_misconfigured" });
  });

  it("answers 502 when the token endpoint refuses the client, naming CentrePoint's reason", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    fake.failNext(1, { status: 400, path: "/connect/token", contentType: "application/json", body: '{"error":"invalid_client"}' });
    const res = await admin(`/sources/${source}/registration`);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({
      error: "upstream_error",
      message: "The registration could not be read: CentrePoint refused the API credentials (HTTP 400): invalid_client",
      upstream: { status: 400, endpoint: "/connect/token" },
    });
  });
});

describe("reports", () => {
  it("lists recent runs newest first, with the integer counts at the top level", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    historyDelivery(fake, 1, { responseCode: 401 });
    await admin(`/sources/${source}/reconcile`, { method: "POST" });
    await admin(`/sources/${source}/reconcile`, { method: "POST" });
    const all = (await (await admin(`/sources/${source}/reconcile`)).json()) as { source: string; items: Record<string, unknown>[] };
    expect(all.source).toBe(source);
    expect(all.items.map((r) => [r.id, r.backfilled, r.matched])).toEqual([
      [2, 0, 1],
      [1, 1, 0],
    ]);
    expect(all.items[0]).toMatchObject({ trigger: "manual", complete: true, outcome: "ok", startedAt: "2100-01-01T00:00:00.000Z" });
    const one = (await (await admin(`/sources/${source}/reconcile?limit=1`)).json()) as { items: unknown[] };
    expect(one.items).toHaveLength(1);
    expect((await admin(`/sources/${source}/reconcile?limit=0`)).status).toBe(400);
  });
});

describe("the registration check", () => {
  it("names a URL pointing elsewhere, a disabled webhook and an event a target wants that is not subscribed", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    await putTarget(freshId("t"), { url: "https://edc.example/hooks", events: ["daily_statistics.*"], sources: [source] });
    fake.setWebhook({ studyId: "189", webhookId: "74", url: "https://old-receiver.example.org/hook", isDisabled: true, events: ["upload"] });
    const res = await admin(`/sources/${source}/registration`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; problems: { code: string; message: string }[]; expectedUrl: string };
    expect(body.ok).toBe(false);
    expect(body.expectedUrl).toBe(`https://relay.example.org/webhooks/${source}`);
    expect(body.problems.map((p) => p.code)).toEqual(["url_mismatch", "disabled", "missing_event"]);
    expect(body.problems[2]!.message).toContain("not subscribed to daily_statistics_complete");
  });

  it("finds nothing wrong with a registration that points here, is enabled and has every event", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    fake.setWebhook({ studyId: "189", webhookId: "74", url: `https://relay.example.org/webhooks/${source}` });
    expect(await (await admin(`/sources/${source}/registration`)).json()).toMatchObject({
      ok: true,
      problems: [],
      notes: [],
      registration: { url: `https://relay.example.org/webhooks/${source}`, isDisabled: false },
    });
  });
});

describe("OpenAPI", () => {
  it("describes the three routes with their 400, 404 and 502 answers", async () => {
    const doc = (await (await admin("/openapi.json")).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    for (const [method, path] of ROUTES) {
      const op = doc.paths[`/admin/sources/{id}/${path}`]?.[method.toLowerCase()];
      expect(Object.keys(op?.responses ?? {}), `${method} ${path}`).toEqual(expect.arrayContaining(["200", "400", "404"]));
    }
    expect(Object.keys(doc.paths["/admin/sources/{id}/reconcile"]!.post!.responses)).toContain("502");
  });
});

describe("metrics", () => {
  it("exposes runs by outcome, backfilled total, last success, a run in progress and registration problems per source", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    historyDelivery(fake, 1, { responseCode: 401 });
    historyDelivery(fake, 2, { responseCode: 401 });
    fake.setWebhook({ studyId: "189", webhookId: "74", url: "https://old-receiver.example.org/hook", isDisabled: true });
    await admin(`/sources/${source}/reconcile`, { method: "POST" });
    const text = await (await admin("/metrics")).text();
    const line = (name: string, labels: string) => text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
    expect(line("relay_reconcile_runs_total", `source="${source}",outcome="ok"`)).toMatch(/ 1$/);
    expect(line("relay_reconcile_runs_total", `source="${source}",outcome="failed"`)).toMatch(/ 0$/);
    expect(line("relay_reconcile_backfilled_total", `source="${source}"`)).toMatch(/ 2$/);
    expect(line("relay_reconcile_last_success_timestamp_seconds", `source="${source}"`)).toBe(
      `relay_reconcile_last_success_timestamp_seconds{source="${source}"} ${Date.now() / 1000}`,
    );
    expect(line("relay_reconcile_running", `source="${source}"`)).toMatch(/ 0$/);
    expect(line("relay_registration_problems", `source="${source}"`)).toMatch(/ 2$/);
    expect(await reconcilerOf(source).reports(5)).toHaveLength(1);
  });
});
