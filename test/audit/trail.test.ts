import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { trailOf } from "../../src/audit/audit";
import { type AuditLine, auditLineVerifier } from "../../src/audit/format";
import { verifyText } from "../../src/lib/archive-format";
import { ADMIN_TOKEN, admin, freshId, putSource } from "../support/helpers";
import { clockForEachTest, DAY } from "../support/clock";
import { envWithBrokenTrail } from "../support/trail";

const clock = clockForEachTest();

interface Entry {
  seq: number;
  at: string;
  actor: string;
  role: string;
  via: string;
  action: string;
  object: Record<string, string> | null;
  reason: string | null;
  requestId: string | null;
  address: string | null;
  before: unknown;
  after: unknown;
}

/** The trail's entries about `object`, newest first. */
async function entriesAbout(object: string): Promise<Entry[]> {
  const res = await admin(`/audit?object=${encodeURIComponent(object)}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Entry[] }).items;
}

const SOURCE = { auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET" } };

describe("the audit trail", () => {
  it("records a configuration change before it answers: actor, role, via, request id, address, before and after (secret names only)", async () => {
    const id = freshId();
    const headers = { "cf-connecting-ip": "203.0.113.7", "cf-ray": "ray-put-1" };
    expect((await admin(`/sources/${id}`, { method: "PUT", body: JSON.stringify(SOURCE), headers })).status).toBe(201);
    expect((await admin(`/sources/${id}`, { method: "PUT", body: JSON.stringify({ ...SOURCE, enabled: false }), headers })).status).toBe(200);
    const [second, first] = await entriesAbout(`source:${id}`);
    expect(first).toMatchObject({
      actor: "admin-token",
      role: "admin",
      via: "api",
      action: "source.put",
      object: { source: id },
      requestId: "ray-put-1",
      address: "203.0.113.7",
      before: null,
      after: { auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET" }, enabled: true },
    });
    expect(second).toMatchObject({ action: "source.put", before: first!.after, after: { enabled: false } });
    expect(second!.seq).toBeGreaterThan(first!.seq);
    expect(JSON.stringify([first, second])).not.toContain("B3`MlG4sJR");
  });

  it("needs a reason to delete a document, to change a source's retention and for a bulk replay: 400 reason_required, nothing changed", async () => {
    const id = freshId();
    await putSource(id);
    const noReason = await admin(`/sources/${id}`, { method: "DELETE" });
    expect(noReason.status).toBe(400);
    expect(await noReason.json()).toMatchObject({ error: "reason_required" });
    expect(await env.CONFIG.get(`source:${id}`)).not.toBeNull();

    const retention = { ...SOURCE, retention: { bodyDays: 30, recordDays: 365 } };
    const put = await admin(`/sources/${id}`, { method: "PUT", body: JSON.stringify(retention) });
    expect(put.status).toBe(400);
    expect(await put.json()).toMatchObject({ error: "reason_required" });
    const withReason = await admin(`/sources/${id}`, {
      method: "PUT",
      body: JSON.stringify(retention),
      headers: { "x-audit-reason": "Study 42 protocol section 7" },
    });
    expect(withReason.status).toBe(200);

    const bulk = await admin("/replay", { method: "POST", body: JSON.stringify({ target: "t-none" }) });
    expect(bulk.status).toBe(400);
    expect(await bulk.json()).toMatchObject({ error: "reason_required" });

    expect((await admin(`/sources/${id}`, { method: "DELETE", headers: { "x-audit-reason": "closed study" } })).status).toBe(204);
    const [deleted, retained] = await entriesAbout(id);
    expect(deleted).toMatchObject({ action: "source.delete", reason: "closed study", after: null });
    expect(retained).toMatchObject({ action: "source.put", reason: "Study 42 protocol section 7", after: { retention: { bodyDays: 30 } } });
  });

  it("refuses an action whose entry cannot be written: 503 audit_unavailable, nothing changed", async () => {
    const broken = envWithBrokenTrail();
    const id = freshId();
    const call = (path: string, init: RequestInit) =>
      app.request(
        `/admin${path}`,
        { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", "x-audit-reason": "r" } },
        broken,
      );
    const put = await call(`/sources/${id}`, { method: "PUT", body: JSON.stringify(SOURCE) });
    expect(put.status).toBe(503);
    expect(await put.json()).toMatchObject({ error: "audit_unavailable" });
    expect(await env.CONFIG.get(`source:${id}`)).toBeNull();
    await putSource(id);
    expect((await call(`/sources/${id}`, { method: "DELETE" })).status).toBe(503);
    expect(await env.CONFIG.get(`source:${id}`)).not.toBeNull();
  });

  it("chains every entry: the export verifies with the relay's own checker, and a tampered line is named", async () => {
    const id = freshId();
    for (const enabled of [true, false, true])
      expect((await admin(`/sources/${id}`, { method: "PUT", body: JSON.stringify({ ...SOURCE, enabled }) })).status).toBeLessThan(300);
    const res = await admin("/audit/export");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const text = await res.text();
    const lines = text.trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(verifyText(text, auditLineVerifier(null), "export")).toMatchObject({ ok: true, verified: { records: lines.length } });

    const i = lines.findIndex((l: string) => (JSON.parse(l) as AuditLine).object === JSON.stringify({ source: id }));
    const line = JSON.parse(lines[i]!) as AuditLine;
    lines[i] = JSON.stringify({ ...line, actor: "someone-else" });
    const checked = verifyText(`${lines.join("\n")}\n`, auditLineVerifier(null), "export");
    expect(checked).toMatchObject({
      ok: false,
      broken: { seq: line.seq, entry: "source.put by someone-else", reason: "entryHash does not match the entry's contents", at: `export line ${i + 1}` },
    });
  });

  it("is append-only: the stored entries refuse UPDATE and DELETE", async () => {
    await admin(`/sources/${freshId()}`, { method: "PUT", body: JSON.stringify(SOURCE) });
    await runInDurableObject(trailOf(env), (_instance, state) => {
      expect(() => state.storage.sql.exec("UPDATE entries SET actor = 'x'")).toThrow(/append-only/);
      expect(() => state.storage.sql.exec("DELETE FROM entries")).toThrow(/append-only/);
    });
  });

  it("archives closed days to R2 in write-once segments with manifests that chain and verify", async () => {
    const id = freshId();
    await admin(`/sources/${id}`, { method: "PUT", body: JSON.stringify(SOURCE) });
    clock.advance(2 * DAY);
    const trail = trailOf(env);
    expect(await runDurableObjectAlarm(trail)).toBe(true);
    const listed = await env.ARCHIVE.list({ prefix: "_audit/segments/" });
    const manifests = listed.objects.filter((o) => o.key.endsWith(".manifest.json"));
    expect(manifests.length).toBeGreaterThan(0);
    let after = { seq: 0, hash: "0".repeat(64) };
    for (const m of manifests.sort((a, b) => a.key.localeCompare(b.key))) {
      const manifest = (await (await env.ARCHIVE.get(m.key))!.json()) as { format: string; segment: string; prevHeadHash: string; headHash: string };
      expect(manifest.format).toBe("centrepoint-edge-relay.audit-archive/1");
      expect(manifest.prevHeadHash).toBe(after.hash);
      const text = await (await env.ARCHIVE.get(manifest.segment))!.text();
      const checked = verifyText(text, auditLineVerifier(after), manifest.segment);
      expect(checked.ok).toBe(true);
      if (checked.ok) after = checked.verified.last;
      expect(manifest.headHash).toBe(after.hash);
    }
    const status = await trail.status();
    expect(status.archive.through).toEqual(after);
    expect(status.archive.halted).toBeNull();
    const metrics = await (await admin("/metrics")).text();
    expect(metrics).toContain(`relay_audit_entries ${status.head.seq}`);
    expect(metrics).toContain(`relay_audit_archive_lag_entries ${status.head.seq - after.seq}`);
    expect(metrics).toContain("relay_audit_archive_halted 0");
  });
});
