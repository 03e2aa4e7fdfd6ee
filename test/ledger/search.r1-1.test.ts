import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { admin, ADMIN_TOKEN, freshId, ledgerOf, postWebhook, putSource } from "../support/helpers";
import { LEDGER_MIGRATIONS } from "../../src/ledger/schema";
import { clockForEachTest } from "../support/clock";

/** Review finding 1: searches by CentrePoint's 36-character ids (and longer ones) answered 500. */

clockForEachTest({ quiet: [] });

const GUID = "38a1d5a7-d3df-b80f-48a1-0535801b687b";
const TRACKING = "a7da760f-7906-4cb7-964a-ab87f45ea962";
const LONG_SUBJECT = "SITE-0042/SCREENING-COHORT-B/PARTICIPANT-000000000123";

async function search(source: string, q: string): Promise<string[]> {
  const res = await admin(`/deliveries?source=${source}&q=${encodeURIComponent(q)}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: { deliveryId: string }[] }).items.map((i) => i.deliveryId);
}

async function seed(source: string) {
  await putSource(source);
  expect((await postWebhook(source, { deliveryId: GUID })).status).toBe(200);
  const retrieval = JSON.stringify({
    client_id: "YrcN0eLR5IIiCgG85CgkzT0",
    tracking_id: TRACKING,
    study_id: 1064,
    subject_id: 19512,
    subject_identifier: LONG_SUBJECT,
    request_status: "Completed",
    files: [],
  });
  expect((await postWebhook(source, { deliveryId: "dr-1", event: "data_retrieval_complete", body: retrieval })).status).toBe(200);
  const longUpload = "9".repeat(60);
  expect(
    (await postWebhook(source, { deliveryId: "up-long", body: JSON.stringify({ status: "started", uploadId: longUpload, subjectId: "5", studyId: "9" }) }))
      .status,
  ).toBe(200);
  return { longUpload };
}

describe("search by long identifiers", () => {
  it("finds a delivery by its CentrePoint delivery GUID through the API, by equality", async () => {
    const source = freshId();
    await seed(source);
    // Ids that contain the GUID, or that it is a prefix of: a pattern search (LIKE '%q%') would find them too.
    for (const other of [`${GUID}-retry`, `resent-${GUID}`, GUID.toUpperCase()]) expect((await postWebhook(source, { deliveryId: other })).status).toBe(200);
    expect(await search(source, GUID)).toEqual([GUID]);
    expect(await search(source, GUID.slice(0, 35))).toEqual([]);
    expect(await search(source, `${GUID.slice(0, 8)}%`)).toEqual([]);
    expect(await search(source, GUID.replace(/-/g, "_"))).toEqual([]);
  });

  it("finds deliveries by a tracking GUID, a long subject identifier and a 60-digit upload id, by equality", async () => {
    const source = freshId();
    const { longUpload } = await seed(source);
    expect(await search(source, TRACKING)).toEqual(["dr-1"]);
    expect(await search(source, LONG_SUBJECT)).toEqual(["dr-1"]);
    expect(await search(source, longUpload)).toEqual(["up-long"]);
    expect(await search(source, longUpload.slice(1))).toEqual([]);
  });

  it("searches every source when none is named", async () => {
    const source = freshId();
    await seed(source);
    const res = await admin(`/deliveries?q=${TRACKING}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { items: { source: string }[] }).items).toContainEqual(expect.objectContaining({ source, deliveryId: "dr-1" }));
  });

  it("finds them through the dashboard", async () => {
    const source = freshId();
    await seed(source);
    const get = (q: string) =>
      exports.default.fetch(`http://relay.test/admin/ui/deliveries?source=${source}&q=${encodeURIComponent(q)}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        redirect: "manual",
      });
    const byId = await get(GUID);
    expect(byId.status).toBe(302);
    expect(byId.headers.get("location")).toBe(`/admin/ui/deliveries/${source}/${GUID}`);
    const byTracking = await get(TRACKING);
    expect(byTracking.status).toBe(200);
    expect(await byTracking.text()).toContain("dr-1");
  });

  it("fills the search keys of deliveries recorded before the keys existed", async () => {
    const source = freshId();
    await seed(source);
    const ledger = ledgerOf(source);
    // Back to the schema before the search keys: drop the table and the migration's version.
    await runInDurableObject(ledger, (_i, state) => {
      const sql = state.storage.sql;
      const migrations = sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'search_keys'").toArray();
      expect(migrations).toHaveLength(1);
      sql.exec("DROP TABLE search_keys");
      // Re-run the migration that creates the keys, as the constructor does for a ledger older than it
      // (later migrations are not re-runnable: they add columns and tables of their own).
      sql.exec(LEDGER_MIGRATIONS.find((m) => m.includes("CREATE TABLE search_keys"))!);
    });
    await evictDurableObject(ledger);
    expect(await search(source, TRACKING)).toEqual(["dr-1"]);
    expect(await search(source, LONG_SUBJECT)).toEqual(["dr-1"]);
  });
});
