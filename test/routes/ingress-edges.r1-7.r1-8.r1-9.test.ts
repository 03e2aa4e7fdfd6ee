import { createExecutionContext, env, runDurableObjectAlarm, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { app } from "../../src/app";
import { BATCH_BYTES, takeByBytes } from "../../src/lib/batch";
import { dueRows } from "../../src/outbox/schedule";
import type { HandoffItem } from "../../src/outbox/types";
import { admin, CENTREPOINT_IP, freshId, ledgerOf, postWebhook, putSource, putTarget, sign } from "../support/helpers";
import { clockForEachTest } from "../support/clock";
import { fakeTarget, fireAlarm, outboxOf } from "../support/outbox";

clockForEachTest({ quiet: [] });

type Detail = { attention: string | null; envelope: { data: Record<string, unknown> } };

/** Review finding 7: a deeply nested body made envelope serialization throw, and the delivery was refused with 500. */
describe("a body nested 20,000 deep", () => {
  it("is recorded and acknowledged, its envelope without `original`, flagged for attention", async () => {
    const source = freshId();
    await putSource(source);
    const body = `{"status":"completed","uploadId":"1","studyId":"2","subjectId":"3","deep":${"[".repeat(20_000)}${"]".repeat(20_000)}}`;
    const id = crypto.randomUUID();
    const res = await postWebhook(source, { deliveryId: id, body });
    expect(res.status).toBe(200);
    const detail = (await (await admin(`/deliveries/${source}/${id}`)).json()) as Detail;
    expect(detail.attention).toMatch(/original/);
    expect(detail.envelope.data).not.toHaveProperty("original");
    expect(detail.envelope.data).toMatchObject({ uploadId: "1", status: "completed" });
  });
});

/** Review finding 8: any body with a `ValidationCode` key was answered as a handshake, and not recorded. */
describe("handshake detection", () => {
  it("records an authenticated upload event that carries a ValidationCode key, and echoes nothing", async () => {
    const source = freshId();
    await putSource(source);
    const id = crypto.randomUUID();
    const body = JSON.stringify({ status: "started", uploadId: "1", subjectId: "2", studyId: "3", ValidationCode: "abc" });
    const res = await postWebhook(source, { deliveryId: id, body });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "accepted", deliveryId: id });
    expect(res.headers.get("x-actigraph-hook-secret")).toBeNull();
  });

  it("still answers the documented handshake body without an event header, and X-ActiGraph-Event: validation in any casing", async () => {
    const source = freshId();
    await putSource(source);
    const body = JSON.stringify({ WebhookId: "74", ValidationCode: "1d3ad7a1-91c9-4ffc-8562-5bad545e6a40" });
    const bare = await postWebhook(source, { event: null, body });
    expect(bare.headers.get("x-actigraph-hook-secret")).toBe("1d3ad7a1-91c9-4ffc-8562-5bad545e6a40");
    const cased = await postWebhook(source, { event: "VaLiDaTiOn", body: JSON.stringify({ WebhookId: "74", ValidationCode: "code-2" }) });
    expect(cased.headers.get("x-actigraph-hook-secret")).toBe("code-2");
    expect(await ledgerOf(source).list({ limit: 10 })).toHaveLength(0);
  });

  it("treats a body with extra keys besides the handshake's and no event header as a delivery", async () => {
    const source = freshId();
    await putSource(source);
    const body = JSON.stringify({ WebhookId: "74", ValidationCode: "x", status: "started" });
    const res = await postWebhook(source, { event: null, body });
    expect(await res.json()).toMatchObject({ status: "accepted" });
    expect(res.headers.get("x-actigraph-hook-secret")).toBeNull();
  });
});

/** Review finding 9: memory and row size were bounded by counts, not bytes, and MAX_BODY_BYTES had no ceiling. */
describe("size limits in bytes", () => {
  async function postWithEnv(vars: Record<string, string>, source: string, body: string) {
    const ctx = createExecutionContext();
    const res = await app.request(
      `http://relay.test/webhooks/${source}`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-actigraph-event": "daily_statistics_complete",
          "x-actigraph-delivery": crypto.randomUUID(),
          "cf-connecting-ip": CENTREPOINT_IP,
          "x-actigraph-signature": await sign(body),
        },
        body,
      },
      { ...env, ...vars },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return res;
  }

  /** A daily-statistics body of about `size` bytes (its unlisted fields are copied into the envelope too). */
  function bigBody(size: number): string {
    const head = '{"id":1,"studyId":2,"subjectId":3,"siteId":4,"date":"2024-01-01T00:00:00+00:00","pad":"';
    return head + "x".repeat(size - head.length - 2) + '"}';
  }

  it("clamps MAX_BODY_BYTES to 1 MiB: a larger body gets 413, and the misconfiguration is logged naming the variable", async () => {
    const source = freshId();
    await putSource(source);
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: unknown) => void errors.push(String(line)));
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const res = await postWithEnv({ MAX_BODY_BYTES: "8000000" }, source, bigBody(1_048_577));
    expect(res.status).toBe(413);
    expect(errors.some((l) => l.includes("MAX_BODY_BYTES"))).toBe(true);
  });

  it("records a body just under the ceiling whose envelope would not fit a row, with a reduced envelope", async () => {
    const source = freshId();
    await putSource(source);
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const res = await postWithEnv({ MAX_BODY_BYTES: "1048576" }, source, bigBody(1_048_000));
    expect(res.status).toBe(200);
    const { deliveryId } = (await res.json()) as { deliveryId: string };
    const detail = (await (await admin(`/deliveries/${source}/${deliveryId}`)).json()) as Detail & { bodySize: number };
    expect(detail.bodySize).toBe(1_048_000);
    expect(detail.envelope.data).not.toHaveProperty("original");
    expect(detail.attention).toMatch(/original/);
  });

  it("hands near-limit bodies over in pushes and batches cut by bytes, and delivers each", async () => {
    const source = freshId();
    const target = freshId("t");
    await putSource(source);
    await putTarget(target, { url: "https://edc.example/hooks", format: "raw", sources: [source] });
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    // Pushes fail while the bodies arrive, so ten 1 MB hand-offs (more than one BATCH_BYTES) wait for the alarm.
    const ledger = ledgerOf(source);
    const pushed: number[] = [];
    await runInDurableObject(ledger, (instance) => {
      const self = instance as unknown as {
        outboxFor: (t: string, s?: string) => { acceptHandoff(t: string, items: HandoffItem[]): Promise<unknown> };
        open?: boolean;
      };
      const real = self.outboxFor;
      self.outboxFor = (t, s) => ({
        acceptHandoff: (id, items) => {
          if (!self.open) return Promise.reject(new Error("outbox unavailable"));
          pushed.push(items.reduce((n, i) => n + i.body.length + i.envelope.length, 0));
          return real(t, s).acceptHandoff(id, items);
        },
      });
    });
    for (let i = 0; i < 10; i++) expect((await postWithEnv({ MAX_BODY_BYTES: "1048576" }, source, bigBody(1_000_000))).status).toBe(200);
    await runInDurableObject(ledger, (instance) => void ((instance as unknown as { open: boolean }).open = true));
    for (let i = 0; i < 10 && pushed.length === 0; i++) {
      vi.setSystemTime(Date.now() + 10 * 60_000);
      await runDurableObjectAlarm(ledger);
    }
    for (let i = 0; i < 10 && pushed.reduce((a, b) => a + b, 0) < 10_000_000; i++) await runDurableObjectAlarm(ledger);
    expect(pushed.length).toBeGreaterThan(1);
    expect(Math.max(...pushed)).toBeLessThanOrEqual(BATCH_BYTES);
    // The outbox takes its batch by bytes too: ten rows are due, fewer than ten fit one batch.
    const batch = await runInDurableObject(outboxOf(target), (_i, state) => dueRows(state.storage.sql, Date.now(), 50, false));
    expect(batch.length).toBeGreaterThan(1);
    expect(batch.length).toBeLessThan(10);
    expect(batch.reduce((n, r) => n + (r.body as ArrayBuffer).byteLength + String(r.envelope).length, 0)).toBeLessThanOrEqual(BATCH_BYTES);
    const edc = fakeTarget();
    for (let i = 0; i < 10 && (await fireAlarm(outboxOf(target))); i++);
    expect(edc.sent).toHaveLength(10);
    expect(edc.sent.every((s) => s.body.length === 1_000_000)).toBe(true);
  });

  it("cuts batches by bytes: never more than the budget unless one item alone is larger", () => {
    const sizes = [400, 400, 400, 1500, 10, 10];
    const batch = takeByBytes(sizes, (n) => n, 1000);
    expect(batch).toEqual([400, 400]);
    expect(takeByBytes([1500, 10], (n) => n, 1000)).toEqual([1500]);
    expect(takeByBytes([], (n: number) => n, 1000)).toEqual([]);
  });
});
