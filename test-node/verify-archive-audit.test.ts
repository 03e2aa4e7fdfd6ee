import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { AUDIT_ARCHIVE_FORMAT, AUDIT_ARCHIVE_PREFIX, type AuditFields, type AuditLine, auditLineText, auditLink } from "../src/audit/format.ts";
import { manifestText, type SegmentManifest, segmentKeys } from "../src/lib/archive-format.ts";
import { GENESIS } from "../src/lib/chain.ts";

/**
 * `npm run verify-archive` on the audit trail's segments and on its export, built with the very
 * code the Worker writes them with (src/audit/format.ts, src/lib/archive-format.ts; test/audit/
 * trail.test.ts checks the Worker's own segments and export with the same checker).
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SCRIPT = join(ROOT, "scripts", "verify-archive.ts");
const T0 = Date.UTC(2100, 0, 1);

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Five chained entries: people through the API and the dashboard, and the relay itself. */
function entries(): AuditLine[] {
  const made: AuditLine[] = [];
  const actions: [string, string, AuditFields["via"], string, string | null][] = [
    ["alice@site.org", "admin", "api", "source.put", null],
    ["bob@site.org", "operator", "dashboard", "delivery.replay", "EDC was down on 3 March"],
    ["system", "system", "system", "target.hold", "target answered 410 Gone"],
    ["bob@site.org", "operator", "api", "delivery.release", "site confirmed the subject"],
    ["alice@site.org", "admin", "api", "source.delete", "study closed"],
  ];
  let prev = GENESIS;
  for (const [i, [actor, role, via, action, reason]] of actions.entries()) {
    const fields: AuditFields = {
      prevHash: prev,
      seq: i + 1,
      at: T0 + i * 60_000,
      actor,
      role,
      via,
      action,
      object: JSON.stringify({ source: "s1" }),
      reason,
      requestId: via === "system" ? null : `ray-${i}`,
      address: via === "system" ? null : "203.0.113.7",
      before: null,
      after: action === "source.put" ? JSON.stringify({ auth: { type: "hmac", secretEnv: "S1_SECRET" } }) : null,
    };
    const line: AuditLine = { ...fields, chainVersion: 1, entryHash: auditLink(fields) };
    made.push(line);
    prev = line.entryHash;
  }
  return made;
}

/** The trail's archive as the Worker lays it out: segments 1-3 and 4-5 with their manifests under `_audit/segments/`. */
function archiveDir(lines: AuditLine[]): string {
  const dir = mkdtempSync(join(tmpdir(), "verify-audit-"));
  dirs.push(dir);
  let prevHead = GENESIS;
  for (const [first, last] of [
    [1, 3],
    [4, 5],
  ] as const) {
    const keys = segmentKeys(AUDIT_ARCHIVE_PREFIX, first, last);
    const text = lines
      .slice(first - 1, last)
      .map(auditLineText)
      .join("");
    const manifest: SegmentManifest = {
      format: AUDIT_ARCHIVE_FORMAT,
      source: "audit",
      segment: keys.segment,
      firstSeq: first,
      lastSeq: last,
      count: last - first + 1,
      firstReceivedAt: new Date(lines[first - 1]!.at).toISOString(),
      lastReceivedAt: new Date(lines[last - 1]!.at).toISOString(),
      prevHeadHash: prevHead,
      headHash: lines[last - 1]!.entryHash,
      sha256: createHash("sha256").update(text).digest("hex"),
      bytes: Buffer.byteLength(text),
      chainVersions: [1],
      closedBy: "day-end",
      createdAt: new Date(T0 + 86_400_000).toISOString(),
    };
    mkdirSync(join(dir, AUDIT_ARCHIVE_PREFIX, "segments"), { recursive: true });
    writeFileSync(join(dir, keys.segment), text);
    writeFileSync(join(dir, keys.manifest), manifestText(manifest));
    prevHead = manifest.headHash;
  }
  return dir;
}

function exportFile(lines: AuditLine[]): string {
  const dir = mkdtempSync(join(tmpdir(), "verify-audit-export-"));
  dirs.push(dir);
  const file = join(dir, "audit-export.ndjson");
  writeFileSync(file, lines.map(auditLineText).join(""));
  return file;
}

function verify(path: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, path], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("verify-archive: the audit trail", () => {
  test("says OK for the trail's segments and manifests, with the head hash", () => {
    const lines = entries();
    const { status, out } = verify(archiveDir(lines));
    assert.equal(status, 0, out);
    assert.match(out, /^OK: 2 segments, 5 records \(seq 1-5, from the chain's start\)/);
    assert.ok(out.includes(`head hash ${lines[4]!.entryHash}`), out);
  });

  test("says OK for an export, and names the first tampered entry by seq, action and actor", () => {
    const lines = entries();
    const ok = verify(exportFile(lines));
    assert.equal(ok.status, 0, ok.out);
    assert.match(ok.out, /^OK: 5 audit entries \(seq 1-5\), anchored at prev hash 0{64}/);

    // Someone rewrites who released the held events.
    const tampered = lines.map((l) => (l.seq === 4 ? { ...l, actor: "carol@site.org" } : l));
    const bad = verify(exportFile(tampered));
    assert.equal(bad.status, 1, bad.out);
    assert.match(
      bad.out,
      /^BROKEN at audit entry seq 4 \(delivery\.release by carol@site\.org\): entryHash does not match the entry's contents \[audit-export\.ndjson line 4\]/,
    );
  });

  test("names a removed entry, and a segment rewritten under its manifest", () => {
    const lines = entries();
    const gap = verify(exportFile(lines.filter((l) => l.seq !== 3)));
    assert.equal(gap.status, 1, gap.out);
    assert.match(gap.out, /^BROKEN at audit entry seq 4 \(delivery\.release by bob@site\.org\): entry 3 is missing/);

    const dir = archiveDir(lines);
    const segment = join(dir, segmentKeys(AUDIT_ARCHIVE_PREFIX, 1, 3).segment);
    const text = readFileSync(segment, "utf8").split("\n");
    const second = JSON.parse(text[1]!) as AuditLine;
    text[1] = JSON.stringify({ ...second, reason: "no reason" });
    writeFileSync(segment, text.join("\n"));
    const broken = verify(dir);
    assert.equal(broken.status, 1, broken.out);
    assert.match(broken.out, /^BROKEN at audit entry seq 2 \(delivery\.replay by bob@site\.org\): entryHash does not match/);
  });
});
