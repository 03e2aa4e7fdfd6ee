import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { runInDurableObject } from "cloudflare:test";
import { clearConfigCache } from "../../src/config/store";
import { listDownloads, recordDownload } from "../../src/ledger/enrichment";
import { LEDGER_MIGRATIONS } from "../../src/ledger/schema";
import type { CentrePointGateway } from "../../src/pull/gateway";
import { signLink } from "../../src/pull/links";
import { RELAY_LIMIT_PER_MINUTE } from "../../src/providers/centrepoint/api/budget";
import { admin, ledgerOf, putSource, putTarget } from "../support/helpers";
import {
  completeRequests,
  cpClientOf,
  drainLedger,
  envelopesTo,
  LINK_KEY,
  newPullSource,
  newTargetOf,
  PREVIOUS_LINK_KEY,
  push,
  rawProcessingBody,
  runQueue,
  settle,
  useFakeCentrePoint,
  useTestHooks,
} from "../support/pull";

/**
 * Relay links to data files (src/routes/files.ts, src/pull/links.ts, src/pull/link-limits.ts):
 * signed, expiring, revoked with their target, limited per link and per address, checked before
 * anything touches CentrePoint, CentrePoint's download URL reused until shortly before it expires,
 * every download audited in one row per link.
 */

const { advance, lines } = useTestHooks(["log", "warn"]);

/** A fresh subject per test: the client's queue (shared by the file's tests) requests a subject and range once. */
let subject = 2100;

/**
 * A source with autoRequest whose target wants data files; one raw-data request completed; returns
 * the links the target received. `block`: more fields of the source's centrepoint block.
 */
async function withFiles(linkTtlHours = 24, block: Record<string, unknown> = {}) {
  const env = useFakeCentrePoint();
  const source = await newPullSource({ autoRequest: { fileFormat: "avro" }, ...block });
  const target = await newTargetOf(source, { enrich: ["datafiles"], linkTtlHours });
  await push(source, rawProcessingBody(++subject, "2100-01-01T00:00:00Z", "2100-01-01T01:00:00Z"), "raw_processing_complete");
  await drainLedger(source);
  await runQueue(block);
  const [done] = await completeRequests(env.fake, source, advance);
  await settle(source, [target]);
  const envelope = envelopesTo(env.sent, target).find((e) => e.type === "com.actigraph.centrepoint.data_retrieval.completed");
  const files = envelope!.data.enrichment.dataFiles as { id: string; fileName: string; link: string; linkExpiresAt: string; expiresAt: string }[];
  return { ...env, source, target, files, completion: done!.deliveryId };
}

/** GETs a link as an EDC would (the address it comes from set by Cloudflare). */
function download(link: string, ip = "198.51.100.7"): Promise<Response> {
  return exports.default.fetch(link, { headers: { "cf-connecting-ip": ip }, redirect: "manual" });
}

/** A link to `fileId` of `source` for `target`, signed with `key`, expiring `exp` (Unix seconds). */
function linkFor(source: string, fileId: string, target: string, exp: number, key = LINK_KEY): string {
  return `https://relay.example.org/files/${source}/${fileId}?t=${target}&exp=${exp}&sig=${signLink(key, { source, fileId, target, exp })}`;
}

describe("relay file links", () => {
  it("are absolute on RELAY_PUBLIC_URL and replace CentrePoint's short-lived URLs in the event", async () => {
    const { files, source, target } = await withFiles();
    expect(files).toHaveLength(2);
    for (const f of files) {
      expect(f.link).toMatch(new RegExp(`^https://relay\\.example\\.org/files/${source}/${f.id}\\?t=${target}&exp=\\d+&sig=[A-Za-z0-9_-]+$`));
      expect(Date.parse(f.linkExpiresAt)).toBe(Date.now() + 24 * 3_600_000 - (Date.now() % 1000));
    }
  });

  it("answer 302, reusing CentrePoint's download URL until 20 s before its expiry, and count a link's downloads in one audit row", async () => {
    const { fake, files, source, target, completion } = await withFiles();
    const link = files[0]!.link;
    const urlCalls = () => fake.requests().filter((r) => r.path.endsWith("/downloadurl")).length;
    const first = await download(link);
    const start = Date.now();
    advance(99_000); // CentrePoint's URLs are valid about two minutes: reused until 20 s before that
    const second = await download(link, "203.0.113.9");
    expect([first.status, second.status]).toEqual([302, 302]);
    const [a, b] = [first.headers.get("location")!, second.headers.get("location")!];
    expect(new URL(a).host).toBe("blob.fake.invalid");
    expect(b).toBe(a);
    expect(urlCalls()).toBe(1);
    expect(first.headers.get("cache-control")).toBe("no-store");
    advance(2_000);
    const third = await download(link, "203.0.113.10");
    expect(third.headers.get("location")).not.toBe(a);
    expect(urlCalls()).toBe(2);

    const audit = (await (await admin(`/sources/${source}/downloads`)).json()) as { items: Record<string, unknown>[] };
    expect(audit.items).toEqual([
      {
        id: expect.any(Number),
        targetId: target,
        fileId: files[0]!.id,
        deliveryId: completion,
        outcome: "redirected",
        count: 3,
        firstAt: new Date(start).toISOString(),
        at: new Date().toISOString(),
        firstIp: "198.51.100.7",
        clientIp: "203.0.113.10",
      },
    ]);
    const detail = (await (await admin(`/deliveries/${source}/${completion}`)).json()) as { pull: { downloads: unknown[] } };
    expect(detail.pull.downloads).toMatchObject([{ count: 3 }]);
    expect((await ledgerOf(source).pullStats()).downloads).toEqual({ [target]: 3 });
    expect(await (await admin("/metrics")).text()).toContain(`relay_file_downloads_total{source="${source}",target="${target}"} 3`);
    // The URL is a credential of CentrePoint's: never in a log line, never in the audit.
    for (const url of [a, third.headers.get("location")!]) {
      expect(lines.join("\n")).not.toContain(new URL(url).searchParams.get("sig")!);
      expect(JSON.stringify(audit)).not.toContain(new URL(url).searchParams.get("sig")!);
    }
  });

  it("limit a link to 10 requests a minute: the 11th answers 429 with Retry-After, asking and auditing nothing", async () => {
    const { fake, files, source } = await withFiles();
    const link = files[0]!.link;
    for (let i = 0; i < 10; i++) expect((await download(link, `198.51.100.${i + 1}`)).status).toBe(302);
    advance(15_000);
    const before = fake.requests().length;
    const refused = await download(link, "198.51.100.99");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("45");
    expect(await refused.json()).toEqual({ error: "rate_limited", message: "This link was used too often in the last minute; try again later." });
    expect(fake.requests().length).toBe(before);
    expect(await ledgerOf(source).listDownloads(10)).toMatchObject([{ count: 10 }]);
    // The other file's link has its own limit; after the minute this one works again.
    expect((await download(files[1]!.link, "198.51.100.99")).status).toBe(302);
    advance(45_000);
    expect((await download(link, "198.51.100.99")).status).toBe(302);
  });

  it("limit a client address to 60 requests a minute across links, an IPv6 address by its /64", async () => {
    const { files, source, target } = await withFiles();
    const more = [await newTargetOf(source), await newTargetOf(source), await newTargetOf(source)];
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const links = [target, ...more].flatMap((t) => files.map((f) => linkFor(source, f.id, t, exp))); // 8 links, each under its own limit
    for (let i = 0; i < 60; i++) expect((await download(links[i % links.length]!, `2001:db8:7:1::${(i + 1).toString(16)}`)).status).toBe(302);
    const refused = await download(links[0]!, "2001:db8:7:1:ffff::1");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("60");
    expect(await refused.json()).toMatchObject({ message: "Too many file requests from this address; try again later." });
    expect((await download(links[0]!, "2001:db8:7:2::1")).status).toBe(302); // another /64
  });

  it("answer 503 with Retry-After when the API budget is used up, without asking CentrePoint or auditing", async () => {
    const block = { clientIdEnv: "TEST_CP_CLIENT_ID_2" }; // a client of its own: its budget is used up below
    const { fake, files, source } = await withFiles(24, block);
    await runInDurableObject(cpClientOf(block), async (instance: CentrePointGateway) => {
      // Two busy sources take the whole minute (one alone would leave the 10 % kept for quieter ones).
      for (let i = 0, granted = true; i < 1_000 && granted; i++) granted = (await instance.acquire("busy-a")).ok || (await instance.acquire("busy-b")).ok;
      expect((await instance.budgetUsage()).total).toBe(RELAY_LIMIT_PER_MINUTE);
    });
    const before = fake.requests().length;
    const res = await download(files[0]!.link);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await res.json()).toMatchObject({ error: "rate_limited" });
    expect(fake.requests().length).toBe(before);
    expect(await ledgerOf(source).listDownloads(10)).toEqual([]);
  });

  it("are revoked (410) when the target they were issued to is disabled or deleted, and work again once it is enabled", async () => {
    const { fake, files, source, target } = await withFiles();
    const doc = JSON.parse((await env.CONFIG.get(`target:${target}`))!) as Record<string, unknown>;
    const before = fake.requests().length;
    await putTarget(target, { ...doc, enabled: false });
    const disabled = await download(files[0]!.link);
    expect(disabled.status).toBe(410);
    expect(await disabled.json()).toEqual({ error: "gone", message: "This link was revoked: the target it was issued to is disabled or no longer exists." });
    await env.CONFIG.delete(`target:${target}`);
    clearConfigCache();
    expect((await download(files[0]!.link)).status).toBe(410);
    expect(fake.requests().length).toBe(before);
    expect(await ledgerOf(source).listDownloads(10)).toEqual([]);
    await putTarget(target, doc);
    expect((await download(files[0]!.link)).status).toBe(302);
  });

  it("keep one audit row per link: a link requested over and over never pushes another link's download out of the bounded log", async () => {
    const source = await newPullSource();
    const rows = await runInDurableObject(ledgerOf(source), (_i, state) => {
      const sql = state.storage.sql;
      const entry = { targetId: "edc-1", deliveryId: "d-1", clientIp: "198.51.100.7", outcome: "redirected" };
      recordDownload(sql, { ...entry, at: 1_000, fileId: "genuine" }, 2);
      for (let i = 0; i < 1_000; i++) recordDownload(sql, { ...entry, at: 2_000 + i, fileId: "hammered", clientIp: `203.0.113.${i % 250}` }, 2);
      return listDownloads(sql, { limit: 10 });
    });
    expect(rows.map((r) => [r.fileId, r.count])).toEqual([
      ["hammered", 1_000],
      ["genuine", 1],
    ]);
  });

  it("fold the per-request audit rows of a ledger that had downloads before into one row per link (migration)", async () => {
    const source = await newPullSource();
    const rows = await runInDurableObject(ledgerOf(source), (_i, state) => {
      const sql = state.storage.sql;
      // The table as it was: one row per request.
      sql.exec(`DROP TABLE downloads;
        CREATE TABLE downloads (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, target_id TEXT NOT NULL, file_id TEXT NOT NULL,
          delivery_id TEXT, client_ip TEXT, outcome TEXT NOT NULL);
        CREATE INDEX downloads_by_delivery ON downloads (delivery_id, id);`);
      const old = (at: number, file: string, ip: string, outcome = "redirected") =>
        sql.exec("INSERT INTO downloads (at, target_id, file_id, delivery_id, client_ip, outcome) VALUES (?, 'edc-1', ?, 'd-1', ?, ?)", at, file, ip, outcome);
      old(1_000, "f-1", "198.51.100.1");
      old(2_000, "f-2", "198.51.100.2");
      old(3_000, "f-1", "198.51.100.3");
      old(4_000, "f-1", "198.51.100.4", "upstream_error: 500");
      old(5_000, "f-1", "198.51.100.5");
      sql.exec(LEDGER_MIGRATIONS.find((m) => m.includes("downloads_by_link"))!);
      recordDownload(sql, { at: 6_000, targetId: "edc-1", fileId: "f-2", deliveryId: "d-1", clientIp: "198.51.100.6", outcome: "redirected" });
      return listDownloads(sql, { limit: 10 }).map(({ id: _id, ...r }) => r);
    });
    const common = { targetId: "edc-1", deliveryId: "d-1" };
    expect(rows).toEqual([
      { ...common, fileId: "f-2", outcome: "redirected", count: 2, firstAt: 2_000, at: 6_000, firstIp: "198.51.100.2", clientIp: "198.51.100.6" },
      { ...common, fileId: "f-1", outcome: "redirected", count: 3, firstAt: 1_000, at: 5_000, firstIp: "198.51.100.1", clientIp: "198.51.100.5" },
      { ...common, fileId: "f-1", outcome: "upstream_error: 500", count: 1, firstAt: 4_000, at: 4_000, firstIp: "198.51.100.4", clientIp: "198.51.100.4" },
    ]);
  });

  it("accept a link signed with the key being rotated out (FILE_LINK_SECRET_PREVIOUS)", async () => {
    const { files, source, target } = await withFiles();
    const exp = Math.floor(Date.now() / 1000) + 3600;
    expect((await download(linkFor(source, files[0]!.id, target, exp, PREVIOUS_LINK_KEY))).status).toBe(302);
  });

  it("refuse a missing or forged signature with 403, before anything else and without asking CentrePoint", async () => {
    const { fake, files, source, target } = await withFiles();
    const before = fake.requests().length;
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const valid = new URL(files[0]!.link);
    for (const link of [
      `https://relay.example.org/files/${source}/${files[0]!.id}?t=${target}&exp=${exp}`,
      linkFor(source, files[0]!.id, target, exp, "some-other-key"),
      `${valid.origin}${valid.pathname}?t=${target}&exp=${Number(valid.searchParams.get("exp")) + 3600}&sig=${valid.searchParams.get("sig")}`,
      linkFor(source, files[0]!.id, target, Math.floor(Date.now() / 1000) - 10, "some-other-key"), // forged and expired: 403 first
    ]) {
      const res = await download(link);
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: "forbidden", message: "This link's signature is missing or does not match." });
    }
    expect(fake.requests().length).toBe(before);
    expect((await ledgerOf(source).listDownloads(10)).length).toBe(0);
  });

  it("refuse an expired link with 410 without asking CentrePoint", async () => {
    const { fake, files, source } = await withFiles(1);
    advance(3_600_000 + 1_000);
    const before = fake.requests().length;
    const res = await download(files[0]!.link);
    expect(res.status).toBe(410);
    expect(await res.json()).toMatchObject({ error: "gone" });
    expect(fake.requests().length).toBe(before);
    expect((await ledgerOf(source).listDownloads(10)).length).toBe(0);
  });

  it("refuse an unknown source or file with 404 without asking CentrePoint", async () => {
    const { fake, source, target } = await withFiles();
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const before = fake.requests().length;
    for (const link of [linkFor(source, "999999", target, exp), linkFor("no-such-source", "1", target, exp)]) {
      const res = await download(link);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: "not_found", message: "Unknown source or file." });
    }
    expect(fake.requests().length).toBe(before);
  });

  it("of a disabled source answer 404 exactly as for an unknown source, without asking CentrePoint or auditing", async () => {
    const { fake, files, source } = await withFiles();
    const doc = JSON.parse((await env.CONFIG.get(`source:${source}`))!) as Record<string, unknown>;
    await putSource(source, { ...doc, enabled: false });
    const before = fake.requests().length;
    const res = await download(files[0]!.link);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found", message: "Unknown source or file." });
    expect(fake.requests().length).toBe(before);
    expect(await ledgerOf(source).listDownloads(10)).toEqual([]);
  });

  it("answer 502 when CentrePoint gives no download URL, and audit the failed download", async () => {
    const { fake, files, source } = await withFiles();
    fake.failNext(1, { status: 500, path: "/dataretrieval/v3/DataFiles" });
    const res = await download(files[0]!.link);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: "upstream_error", upstream: { status: 500 } });
    expect(await ledgerOf(source).listDownloads(10)).toMatchObject([{ outcome: "upstream_error: 500" }]);
  });
});
