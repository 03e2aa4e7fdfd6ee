import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/store";
import { enrichmentFor, withEnrichment } from "../../src/pull/compose";
import { applicableFacts, keysOf, type StoredEnrichment } from "../../src/pull/facts";
import { addressKey, admitRequest, type CachedUrl, cachedUrl, cacheUrl, type LimitWindow, MAX_LIMIT_KEYS, reuseUntil } from "../../src/pull/link-limits";
import { buildLink, linkExpiry, linkKeys, signLink, verifyLink } from "../../src/pull/links";
import { planPull } from "../../src/pull/plan";
import { splitRange } from "../../src/pull/requests";
import { HOLD_AT } from "../../src/ledger/types";
import type { TargetConfig } from "../../src/config/schemas";
import type { Listed } from "../../src/config/store";

/** The pull side's pure core: facts that apply, plans, composition, links, ranges. */

const DAY = 86_400_000;
const NOW = Date.UTC(2100, 0, 1);

function target(id: string, doc: Record<string, unknown>): Listed<TargetConfig> {
  const parsed = parseConfig("target", { url: "https://edc.example/x", ...doc });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  return { id, valid: true, config: parsed.value };
}

describe("target and source documents", () => {
  it("default to no enrichment, a 10-minute deadline, links for 168 h, and no automatic requests", () => {
    const t = parseConfig("target", { url: "https://edc.example/x" });
    expect(
      t.ok && {
        enrich: t.value.enrich,
        enrichRequired: t.value.enrichRequired,
        enrichDeadlineMs: t.value.enrichDeadlineMs,
        linkTtlHours: t.value.linkTtlHours,
      },
    ).toEqual({
      enrich: [],
      enrichRequired: false,
      enrichDeadlineMs: 600_000,
      linkTtlHours: 168,
    });
    const s = parseConfig("source", { auth: { type: "none" }, centrepoint: { studyId: 1, webhookId: 2, clientIdEnv: "A", clientSecretEnv: "B" } });
    expect(s.ok && s.value.centrepoint?.autoRequest).toBeUndefined();
  });

  it("refuses unknown facts and formats, and keeps facts in one order without repeats", () => {
    expect(parseConfig("target", { url: "https://edc.example/x", enrich: ["dob"] }).ok).toBe(false);
    expect(
      parseConfig("source", {
        auth: { type: "none" },
        centrepoint: { studyId: 1, webhookId: 2, clientIdEnv: "A", clientSecretEnv: "B", autoRequest: { fileFormat: "zip" } },
      }).ok,
    ).toBe(false);
    const t = parseConfig("target", { url: "https://edc.example/x", enrich: ["datafiles", "subject", "subject"] });
    expect(t.ok && t.value.enrich).toEqual(["subject", "datafiles"]);
  });
});

describe("which facts apply", () => {
  it("subject to any event naming study and subject, upload to upload events, datafiles to completed requests", () => {
    const upload = keysOf("upload.completed", { studyId: "189", subjectId: "2001", uploadId: "9" });
    expect(applicableFacts(["subject", "upload", "datafiles"], upload)).toEqual(["subject", "upload"]);
    const done = keysOf("data_retrieval.completed", { studyId: "189", subjectId: "2001", trackingId: "a7da760f" });
    expect(applicableFacts(["subject", "upload", "datafiles"], done)).toEqual(["subject", "datafiles"]);
    expect(applicableFacts(["datafiles"], keysOf("data_retrieval.error", { trackingId: "x" }))).toEqual([]);
    expect(applicableFacts(["subject"], keysOf("unknown", null))).toEqual([]);
  });
});

describe("planPull", () => {
  const keys = keysOf("upload.completed", { studyId: "189", subjectId: "2001", uploadId: "9" });

  it("plans nothing when no target wants a fact that applies and no raw request is due", () => {
    const plan = planPull({
      targets: [target("a", {}), target("b", { enrich: ["datafiles"] })],
      wanted: ["a", "b"],
      keys,
      receivedAt: NOW,
      autoRequest: "avro",
    });
    expect(plan).toEqual({ extraTargets: [], plans: {} });
  });

  it("makes each enriching target wait until its deadline or hold, and gives the Puller one job with the union of facts", () => {
    const targets = [
      target("a", { enrich: ["subject"], enrichDeadlineMs: 60_000 }),
      target("b", { enrich: ["upload"], enrichRequired: true }),
      target("c", {}),
    ];
    const plan = planPull({ targets, wanted: ["a", "b", "c"], keys, receivedAt: NOW, autoRequest: null });
    expect(plan.extraTargets).toEqual(["@pull"]);
    expect(plan.plans.a).toEqual({ nextAt: NOW + 60_000, enrich: JSON.stringify({ facts: ["subject"], linkTtlHours: 168 }) });
    expect(plan.plans.b?.nextAt).toBe(HOLD_AT);
    expect(plan.plans.c).toBeUndefined();
    expect(JSON.parse(plan.plans["@pull"]!.enrich)).toEqual({ facts: ["subject", "upload"], until: HOLD_AT, autoRequest: null });
  });

  it("gives the Puller a raw-data request for a raw_processing.completed of a source with autoRequest, even without enrichment", () => {
    const raw = keysOf("raw_processing.completed", { studyId: "189", subjectId: "2001" });
    const plan = planPull({ targets: [], wanted: [], keys: raw, receivedAt: NOW, autoRequest: "gt3x" });
    expect(JSON.parse(plan.plans["@pull"]!.enrich)).toEqual({ facts: [], until: 0, autoRequest: "gt3x" });
  });
});

describe("composing data.enrichment", () => {
  const stored: StoredEnrichment = {
    found: {
      subject: { subjectId: "2001", subjectIdentifier: "SUBJ-2001", siteId: "12", siteIdentifier: "Site A", timezone: "UTC" },
      datafiles: [{ id: "77", fileName: "a.avro", sizeBytes: 10, expiresAt: new Date(NOW + 2 * DAY).toISOString() }],
    },
    errors: { upload: "CentrePoint answered HTTP 503" },
    settled: true,
    attempts: 3,
    updatedAt: NOW,
  };
  const ctx = { source: "s1", target: "t1", now: NOW, publicUrl: "https://relay.example.org", linkKey: "k" };

  it("holds only the facts the target asked for, with a status and the reasons", () => {
    expect(enrichmentFor({ facts: ["subject"], linkTtlHours: 168 }, stored, ctx)).toEqual({ status: "complete", reasons: [], subject: stored.found.subject });
    const partial = enrichmentFor({ facts: ["subject", "upload"], linkTtlHours: 168 }, stored, ctx);
    expect(partial).toMatchObject({ status: "partial", reasons: ["upload: CentrePoint answered HTTP 503"] });
    expect(partial.dataFiles).toBeUndefined();
    expect(enrichmentFor({ facts: ["upload"], linkTtlHours: 168 }, null, ctx)).toEqual({
      status: "failed",
      reasons: ["upload: the lookup had not started when the event was sent"],
    });
  });

  it("links each data file on RELAY_PUBLIC_URL, expiring at the target's lifetime or CentrePoint's expiry, whichever is first", () => {
    const e = enrichmentFor({ facts: ["datafiles"], linkTtlHours: 168 }, stored, ctx);
    const file = e.dataFiles![0]!;
    const exp = Math.floor((NOW + 2 * DAY) / 1000);
    expect(file.link).toBe(`https://relay.example.org/files/s1/77?t=t1&exp=${exp}&sig=${signLink("k", { source: "s1", fileId: "77", target: "t1", exp })}`);
    expect(file.linkExpiresAt).toBe(new Date(exp * 1000).toISOString());
    expect(enrichmentFor({ facts: ["datafiles"], linkTtlHours: 1 }, stored, ctx).dataFiles![0]!.link).toContain(`exp=${Math.floor((NOW + 3_600_000) / 1000)}&`);
  });

  it("makes relative links without RELAY_PUBLIC_URL and none without a key (partial, with the reason)", () => {
    expect(enrichmentFor({ facts: ["datafiles"], linkTtlHours: 1 }, stored, { ...ctx, publicUrl: "" }).dataFiles![0]!.link).toMatch(/^\/files\/s1\/77\?/);
    const off = enrichmentFor({ facts: ["datafiles"], linkTtlHours: 1 }, stored, { ...ctx, linkKey: null });
    expect(off.status).toBe("partial");
    expect(off.dataFiles![0]!.link).toBeNull();
    expect(off.reasons[0]).toContain("FILE_LINK_SECRET is not set");
  });

  it("adds data.enrichment and leaves every other attribute and field as recorded", () => {
    const envelope = JSON.stringify({ specversion: "1.0", id: "d1", data: { uploadId: "9", original: { a: 1 } } });
    const out = JSON.parse(withEnrichment(envelope, { status: "failed", reasons: ["x"] }));
    expect(out).toEqual({ specversion: "1.0", id: "d1", data: { uploadId: "9", original: { a: 1 }, enrichment: { status: "failed", reasons: ["x"] } } });
    expect(Object.keys(out).at(-1)).toBe("data");
  });
});

describe("file links", () => {
  const claims = { source: "s1", fileId: "77", target: "t1", exp: Math.floor(NOW / 1000) + 60 };
  const raw = (sig: string | undefined, over: Partial<{ exp: string; target: string; fileId: string }> = {}) => ({
    source: "s1",
    fileId: over.fileId ?? "77",
    target: over.target ?? "t1",
    exp: over.exp ?? String(claims.exp),
    sig,
  });

  it("verify under the current or the previous key, signature before expiry", () => {
    expect(verifyLink(raw(signLink("new", claims)), ["new", "old"], NOW)).toEqual({ ok: true, value: claims });
    expect(verifyLink(raw(signLink("old", claims)), ["new", "old"], NOW).ok).toBe(true);
    expect(verifyLink(raw(signLink("old", claims)), ["new"], NOW)).toEqual({ ok: false, error: "signature" });
    expect(verifyLink(raw(undefined), ["new"], NOW)).toEqual({ ok: false, error: "signature" });
    expect(verifyLink(raw(signLink("new", claims)), ["new"], NOW + 61_000)).toEqual({ ok: false, error: "expired" });
    // An expired link with a forged signature is refused for its signature.
    expect(verifyLink(raw("forged"), ["new"], NOW + 61_000)).toEqual({ ok: false, error: "signature" });
  });

  it("bind the source, file, target and expiry: changing any breaks the signature", () => {
    const sig = signLink("new", claims);
    for (const over of [{ exp: String(claims.exp + 3600) }, { target: "t2" }, { fileId: "78" }])
      expect(verifyLink(raw(sig, over), ["new"], NOW)).toEqual({ ok: false, error: "signature" });
  });

  it("are signed with FILE_LINK_SECRET and verified with it and FILE_LINK_SECRET_PREVIOUS; none without a key", () => {
    expect(linkKeys({ FILE_LINK_SECRET: "new", FILE_LINK_SECRET_PREVIOUS: "old" })).toEqual(["new", "old"]);
    expect(linkKeys({ FILE_LINK_SECRET: "new", FILE_LINK_SECRET_PREVIOUS: "" })).toEqual(["new"]);
    expect(linkKeys({})).toEqual([]);
    expect(verifyLink(raw(signLink("", claims)), [], NOW)).toEqual({ ok: false, error: "signature" });
  });

  it("expire at now + the lifetime, never after CentrePoint's expiry of the file", () => {
    expect(linkExpiry(NOW, 168, null)).toBe(Math.floor((NOW + 168 * 3_600_000) / 1000));
    expect(linkExpiry(NOW, 168, new Date(NOW + DAY).toISOString())).toBe(Math.floor((NOW + DAY) / 1000));
    expect(buildLink("https://r.example/", "k", claims)).toMatch(/^https:\/\/r\.example\/files\/s1\/77\?t=t1&exp=\d+&sig=[A-Za-z0-9_-]{43}$/);
  });
});

describe("splitRange (gt3x requests cover at most 15 days)", () => {
  const MAX = 15 * DAY;

  it("keeps a range that fits, and splits a longer one into consecutive parts covering it exactly", () => {
    expect(splitRange(0, MAX, MAX)).toEqual([{ begin: 0, end: MAX }]);
    const parts = splitRange(1000, 1000 + 40 * DAY, MAX);
    expect(parts).toEqual([
      { begin: 1000, end: 1000 + 15 * DAY },
      { begin: 1000 + 15 * DAY, end: 1000 + 30 * DAY },
      { begin: 1000 + 30 * DAY, end: 1000 + 40 * DAY },
    ]);
    for (const p of parts) expect(p.end - p.begin).toBeLessThanOrEqual(MAX);
  });
});

describe("file-link limits and download URL reuse (src/pull/link-limits.ts)", () => {
  it("reuse a download URL until 20 s before CentrePoint's expiry, and never more than 100 s", () => {
    expect(reuseUntil(NOW, new Date(NOW + 60_000).toISOString())).toBe(NOW + 40_000);
    expect(reuseUntil(NOW, new Date(NOW + 15 * 60_000).toISOString())).toBe(NOW + 100_000);
    expect(reuseUntil(NOW, null)).toBe(NOW + 100_000);
    expect(reuseUntil(NOW, "not a date")).toBe(NOW + 100_000);
    const cache = new Map<string, CachedUrl>();
    cacheUrl(cache, "f", { url: "u", reuseUntil: reuseUntil(NOW, new Date(NOW + 10_000).toISOString()) }, NOW); // already within the margin
    expect(cache.size).toBe(0);
    cacheUrl(cache, "f", { url: "u", reuseUntil: NOW + 1_000 }, NOW);
    expect([cachedUrl(cache, "f", NOW + 999), cachedUrl(cache, "f", NOW + 1_000)]).toEqual(["u", null]);
  });

  it("group IPv6 addresses by /64 and keep IPv4 (also IPv4-mapped) addresses whole", () => {
    expect(addressKey("2001:db8:1:2:aaaa::1")).toBe(addressKey("2001:db8:1:2:bbbb::2"));
    expect(addressKey("2001:db8:1:2::1")).not.toBe(addressKey("2001:db8:1:3::1"));
    expect(addressKey("::ffff:198.51.100.7")).toBe(addressKey("198.51.100.7"));
    expect(addressKey("198.51.100.7")).not.toBe(addressKey("198.51.100.8"));
  });

  it("count a request against every key, refuse without counting once one is used up, and stay bounded", () => {
    const windows = new Map<string, LimitWindow>();
    const limits = [
      { key: "a", limit: 2 },
      { key: "b", limit: 3 },
    ];
    expect([admitRequest(windows, limits, NOW), admitRequest(windows, limits, NOW + 10_000)]).toEqual([{ ok: true }, { ok: true }]);
    expect(admitRequest(windows, limits, NOW + 20_000)).toEqual({ ok: false, retryAfterMs: 40_000, key: "a" });
    expect(windows.get("b")!.count).toBe(2); // the refused request counted against neither key
    expect(admitRequest(windows, limits, NOW + 60_000)).toEqual({ ok: true });
    for (let i = 0; i < MAX_LIMIT_KEYS + 50; i++) admitRequest(windows, [{ key: `k${i}`, limit: 1 }], NOW + 60_000);
    expect(windows.size).toBeLessThanOrEqual(MAX_LIMIT_KEYS);
  });
});
