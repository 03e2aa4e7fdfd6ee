import { exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { clearConfigCache } from "../../src/config/store";
import { admin, ADMIN_TOKEN, freshId, ledgerOf, postWebhook, putSource, putTarget } from "../support/helpers";
import { runDue } from "../support/ledger";
import { clockForEachTest, DAY, T0 } from "../support/clock";
import { fakeTarget, outboxOf } from "../support/outbox";

clockForEachTest();
beforeEach(() => clearConfigCache());

/** A page of the dashboard, as a bearer caller. */
async function page(path: string): Promise<string> {
  const res = await exports.default.fetch(`http://relay.test${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.status, path).toBe(200);
  return res.text();
}

/** A source (bodies kept a day) and a target (delivered events kept a day) after one delivery, two days on: archived and pruned everywhere. */
async function prunedEverywhere() {
  const source = freshId();
  const target = freshId("t");
  fakeTarget();
  await putSource(source, { retention: { bodyDays: 1 } });
  await putTarget(target, { url: "https://edc.example/hooks", sources: [source], retentionDays: 1 });
  await postWebhook(source, { deliveryId: "l-1" });
  await postWebhook(source, { deliveryId: "l-2" });
  for (const at of [T0, T0 + 2 * DAY]) {
    vi.setSystemTime(at);
    await runDue(ledgerOf(source));
    await runDue(outboxOf(target));
  }
  await ledgerOf(source).checkIntegrity();
  return { source, target };
}

describe("archive, retention and integrity as the operator sees them", () => {
  it("GET /admin/sources/:id/lifecycle answers the stored progress", async () => {
    const { source } = await prunedEverywhere();
    expect(await (await admin(`/sources/${source}/lifecycle`)).json()).toMatchObject({
      source,
      head: 2,
      archive: { archivedThrough: 2, lagRecords: 0, segments: 1, halted: null, lastArchivedAt: new Date(T0 + 2 * DAY).toISOString() },
      retention: { prunedBodies: 2, bodiesPrunedThrough: 2, prunedRecords: 0, lastPrunedAt: new Date(T0 + 2 * DAY).toISOString(), error: null },
    });
    expect((await admin("/sources/no-such-source/lifecycle")).status).toBe(404);
  });

  it("/admin/metrics exports archive lag, pruned counts and integrity state", async () => {
    const { source, target } = await prunedEverywhere();
    const text = await (await admin("/metrics")).text();
    for (const line of [
      `relay_archive_lag_records{source="${source}"} 0`,
      `relay_archive_segments_total{source="${source}"} 1`,
      `relay_archive_halted{source="${source}"} 0`,
      `relay_ledger_pruned_total{source="${source}",what="body"} 2`,
      `relay_ledger_pruned_total{source="${source}",what="record"} 0`,
      `relay_outbox_pruned_total{target="${target}",what="dispatch"} 2`,
      `relay_integrity_ok{source="${source}"} 1`,
      `relay_integrity_verified_through{source="${source}"} 2`,
      `relay_integrity_unverified_records{source="${source}"} 0`,
    ])
      expect(text).toContain(line);
  });

  it("the source, target and delivery pages show what was archived and pruned, and when", async () => {
    const { source, target } = await prunedEverywhere();
    const sourcePage = await page(`/admin/ui/sources/${source}`);
    expect(sourcePage).toContain("records 1–2 in 1 segment");
    expect(sourcePage).toContain("bodies kept 1 day after receipt, pruned only once archived");
    expect(sourcePage).toContain("2 bodies (through record #2; their digests stay in the chain), 0 whole records; last 2100-01-03");
    expect(await page(`/admin/ui/targets/${target}`)).toContain("2 delivered events and 2 attempts pruned, last 2100-01-03");
    const deliveryPage = await page(`/admin/ui/deliveries/${source}/l-1`);
    expect(deliveryPage).toContain("Pruned 2100-01-03");
    expect(deliveryPage).not.toContain("Raw body");
    expect(deliveryPage).toContain("pruned after delivery");
    expect(deliveryPage).toContain(`Replay to ${target}`);
    expect(await page("/admin/")).toContain("intact");
  });
});
