import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * `npm run verify-archive` against real output of the relay: the segments, manifests and export
 * under test/support/archive are what the Worker wrote (test/ledger/archive.test.ts checks they
 * are byte for byte what the archive and the export produce today). Each test works on a copy.
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FIXTURES = join(ROOT, "test", "support", "archive");
const SCRIPT = join(ROOT, "scripts", "verify-archive.ts");
const SEGMENT_1 = join("golden", "segments", "000000000001-000000000003.ndjson");
const MANIFEST_2 = join("golden", "segments", "000000000004-000000000006.manifest.json");
const EXPORT = "export-golden-2-5.ndjson";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A copy of the fixtures to tamper with. */
function copy(): string {
  const dir = mkdtempSync(join(tmpdir(), "verify-archive-"));
  dirs.push(dir);
  cpSync(FIXTURES, dir, { recursive: true });
  return dir;
}

/** Runs the verifier as an auditor would (`npm run verify-archive -- <path>`). */
function verify(path: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, path], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Rewrites line `n` (1-based) of a file through `edit` of its parsed JSON. */
function editLine(file: string, n: number, edit: (record: Record<string, unknown>) => void): void {
  const lines = readFileSync(file, "utf8").split("\n");
  const record = JSON.parse(lines[n - 1]!) as Record<string, unknown>;
  edit(record);
  lines[n - 1] = JSON.stringify(record);
  writeFileSync(file, lines.join("\n"));
}

describe("verify-archive: a directory of segments and manifests", () => {
  test("says OK for the archive as written, with every record and the head hash", () => {
    const dir = copy();
    const { status, out } = verify(join(dir, "golden"));
    assert.equal(status, 0, out);
    assert.match(out, /^OK: 3 segments, 7 records \(seq 1-7, from the chain's start\)/);
    const lastManifest = JSON.parse(readFileSync(join(dir, "golden", "segments", "000000000007-000000000007.manifest.json"), "utf8")) as { headHash: string };
    assert.ok(out.includes(`head hash ${lastManifest.headHash}`), out);
  });

  test("names the first broken record when a body was altered", () => {
    const dir = copy();
    editLine(join(dir, SEGMENT_1), 2, (r) => void (r.body = Buffer.from('{"uploadId":"1002","status":"error"}').toString("base64")));
    const { status, out } = verify(join(dir, "golden"));
    assert.equal(status, 1);
    assert.match(out, /^BROKEN at record seq 2 \(delivery golden-2\): body does not match its SHA-256/);
  });

  test("names the record whose fields were edited, even with its body hash recomputed", () => {
    const dir = copy();
    editLine(join(dir, SEGMENT_1), 3, (r) => void (r.subject = "studies/1/subjects/9"));
    const { status, out } = verify(join(dir, "golden"));
    assert.equal(status, 1);
    assert.match(out, /^BROKEN at record seq 3 \(delivery golden-3\): record_hash does not match/);
  });

  test("names the record after one that was removed", () => {
    const dir = copy();
    const file = join(dir, SEGMENT_1);
    const lines = readFileSync(file, "utf8").split("\n");
    lines.splice(1, 1);
    writeFileSync(file, lines.join("\n"));
    const { status, out } = verify(join(dir, "golden"));
    assert.equal(status, 1);
    assert.match(out, /^BROKEN at record seq 3 \(delivery golden-3\): record 2 is missing/);
  });

  test("refuses a manifest chain with a rewritten head hash, and a missing segment", () => {
    const dir = copy();
    const file = join(dir, MANIFEST_2);
    writeFileSync(file, readFileSync(file, "utf8").replace(/"prevHeadHash": "[0-9a-f]+"/, `"prevHeadHash": "${"1".repeat(64)}"`));
    const broken = verify(join(dir, "golden"));
    assert.equal(broken.status, 1);
    assert.match(broken.out, /^BROKEN at record seq 4: the manifest chain is broken/);
    const other = copy();
    rmSync(join(other, SEGMENT_1));
    assert.match(verify(join(other, "golden")).out, /^BROKEN at record seq 1: its segment file 000000000001-000000000003.ndjson is missing/);
  });

  test("refuses a segment file rewritten so that its records still verify", () => {
    const dir = copy();
    const file = join(dir, SEGMENT_1);
    writeFileSync(file, readFileSync(file, "utf8").replace(/\n/g, "\r\n").replace(/\r\n$/, "\n"));
    const { status, out } = verify(join(dir, "golden"));
    assert.equal(status, 1);
    assert.match(out, /does not match its manifest's SHA-256/);
  });
});

describe("verify-archive: one export file", () => {
  test("says OK for an export as served, anchored at the record before its range", () => {
    const dir = copy();
    const { status, out } = verify(join(dir, EXPORT));
    assert.equal(status, 0, out);
    assert.match(out, /^OK: 4 records \(seq 2-5\), anchored at prev hash [0-9a-f]{64} \(the record before seq 2\)/);
  });

  test("names the first broken record of a tampered export", () => {
    const dir = copy();
    editLine(join(dir, EXPORT), 3, (r) => void (r.kind = "upload.error"));
    const { status, out } = verify(join(dir, EXPORT));
    assert.equal(status, 1);
    assert.match(out, /^BROKEN at record seq 4 \(delivery golden-4\): record_hash does not match the record's contents/);
  });

  test("answers a usage error for a missing path", () => {
    assert.equal(verify(join(copy(), "nope")).status, 2);
  });
});
