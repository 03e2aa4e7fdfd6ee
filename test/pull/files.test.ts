import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signLink } from "../../src/pull/links";
import { admin, ledgerOf, putSource } from "../helpers";
import {
  completeRequests,
  envelopesTo,
  LINK_KEY,
  newPullSource,
  newTargetOf,
  PREVIOUS_LINK_KEY,
  settle,
  triggerRaw,
  useFakeCentrePoint,
  useTestHooks,
} from "./fixtures";

/**
 * Relay links to data files (src/routes/files.ts, src/pull/links.ts): signed, expiring, checked
 * before anything touches CentrePoint, a fresh download URL per GET, every download audited.
 */

const { advance, lines } = useTestHooks(["log", "warn"]);

/** A fresh subject per test: the client's queue (shared by the file's tests) requests a subject and range once. */
let subject = 2100;

/** A source with autoRequest whose target wants data files; one raw-data request completed; returns the links the target received. */
async function withFiles(linkTtlHours = 24) {
  const env = useFakeCentrePoint();
  const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
  const target = await newTargetOf(source, { enrich: ["datafiles"], linkTtlHours });
  await triggerRaw(source, ++subject, "2100-01-01T00:00:00Z", "2100-01-01T01:00:00Z");
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

  it("answer 302 to a fresh CentrePoint download URL on each GET, and audit each download in the source's ledger", async () => {
    const { fake, files, source, target, completion } = await withFiles();
    const link = files[0]!.link;
    const first = await download(link);
    const second = await download(link, "203.0.113.9");
    expect([first.status, second.status]).toEqual([302, 302]);
    const [a, b] = [first.headers.get("location")!, second.headers.get("location")!];
    expect(new URL(a).host).toBe("blob.fake.invalid");
    expect(a).not.toBe(b);
    expect(first.headers.get("cache-control")).toBe("no-store");
    expect(fake.requests().filter((r) => r.path.endsWith("/downloadurl"))).toHaveLength(2);

    const audit = (await (await admin(`/sources/${source}/downloads`)).json()) as { items: Record<string, unknown>[] };
    expect(audit.items).toMatchObject([
      { targetId: target, fileId: files[0]!.id, deliveryId: completion, clientIp: "203.0.113.9", outcome: "redirected", at: Date.now() },
      { targetId: target, fileId: files[0]!.id, deliveryId: completion, clientIp: "198.51.100.7", outcome: "redirected" },
    ]);
    const detail = (await (await admin(`/deliveries/${source}/${completion}`)).json()) as { pull: { downloads: unknown[] } };
    expect(detail.pull.downloads).toHaveLength(2);
    expect((await ledgerOf(source).pullStats()).downloads).toEqual({ [target]: 2 });
    expect(await (await admin("/metrics")).text()).toContain(`relay_file_downloads_total{source="${source}",target="${target}"} 2`);
    // The URL is a credential of CentrePoint's: never in a log line.
    expect(lines.join("\n")).not.toContain(new URL(a).searchParams.get("sig")!);
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
