/// <reference types="vite/client" />
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import dashboardDoc from "../../docs/dashboard.md?raw";
import storageDoc from "../../docs/storage.md?raw";
import { type ChainFields, linkHash } from "../../src/ledger/chain";
import { sha256Hex } from "../../src/lib/crypto";
import { freshId, ledgerOf, postWebhook, putSource } from "../support/helpers";
import { insertVersion1Records, verifyFully } from "../support/ledger";
import { clockForEachTest } from "../support/clock";

/**
 * Review finding 15: docs/dashboard.md said the overview checks integrity on every load, and
 * docs/storage.md said every immutable field is in the hash chain while `source_ip`, `id_derived`,
 * `subject` and `attention` were not. Chain version 2 covers them; version 1 records still verify.
 */

clockForEachTest({ quiet: [] });

describe("docs/dashboard.md", () => {
  it("says the overview shows the stored integrity report and never runs a check, as the code does", () => {
    expect(dashboardDoc).not.toMatch(/checked on each load|on each load|at most every \d+ minutes/);
    expect(dashboardDoc).toContain("never runs a check");
  });
});

describe("hash chain version 2", () => {
  const tampers: [string, string][] = [
    ["source_ip", "UPDATE deliveries SET source_ip = '203.0.113.9' WHERE seq = ?"],
    ["id_derived", "UPDATE deliveries SET id_derived = 1 - id_derived WHERE seq = ?"],
    ["subject", "UPDATE deliveries SET subject = 'studies/1/subjects/1' WHERE seq = ?"],
    ["attention", "UPDATE deliveries SET attention = 'edited' WHERE seq = ?"],
    ["provenance", "UPDATE deliveries SET provenance = 'centrepoint-history' WHERE seq = ?"],
    ["same_body_as", "UPDATE deliveries SET same_body_as = 'other' WHERE seq = ?"],
  ];
  for (const [column, sql] of tampers) {
    it(`detects an edited ${column}`, async () => {
      const source = freshId();
      await putSource(source);
      await postWebhook(source, { deliveryId: "a" });
      await postWebhook(source, { deliveryId: "b" });
      const ledger = ledgerOf(source);
      expect(await verifyFully(ledger)).toMatchObject({ ok: true, checked: 2 });
      await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec(sql, 2));
      expect((await verifyFully(ledger)).firstBroken).toMatchObject({ seq: 2, deliveryId: "b" });
    });
  }

  it("keeps verifying records written under version 1, and chains new records onto them", async () => {
    const source = freshId();
    await putSource(source);
    const ledger = ledgerOf(source);
    await runInDurableObject(ledger, (_i, state) => {
      insertVersion1Records(state.storage.sql, [
        { deliveryId: "old-1", body: '{"n":1}', envelope: '{"id":"old-1"}' },
        { deliveryId: "old-2", body: '{"n":2}', envelope: '{"id":"old-2"}' },
      ]);
    });
    await postWebhook(source, { deliveryId: "new-3" });
    expect(await verifyFully(ledger)).toMatchObject({ ok: true, checked: 3 });
    // Version 1 never covered source_ip: editing it there is not a broken chain (docs/storage.md says so).
    await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("UPDATE deliveries SET source_ip = '203.0.113.9' WHERE seq = 1"));
    expect(await verifyFully(ledger)).toMatchObject({ ok: true });
    await runInDurableObject(ledger, (_i, state) => state.storage.sql.exec("UPDATE deliveries SET kind = 'upload.error' WHERE seq = 1"));
    expect((await verifyFully(ledger)).firstBroken).toMatchObject({ seq: 1 });
  });
});

describe("docs/storage.md", () => {
  /** A record whose every field differs from the others, so a missing, extra or misplaced field changes the hash. */
  const fields: ChainFields = {
    prevHash: "a".repeat(64),
    seq: 7,
    deliveryId: "d-7",
    idDerived: true,
    event: "UploadEvent",
    kind: "upload.completed",
    subject: "studies/1/subjects/2",
    attention: "unknown field",
    receivedAt: 1_700_000_000_000,
    sourceIp: "203.0.113.9",
    headers: '{"x-actigraph-event":"UploadEvent"}',
    bodySha256: "b".repeat(64),
    envelopeSha256: "c".repeat(64),
    provenance: "centrepoint-history",
    sameBodyAs: "d-3",
  };
  const camel = (column: string) => column.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

  /** The hash docs/storage.md describes for `version`: its JSON.stringify([...]) list, column by column. */
  function documentedHash(version: 1 | 2): string {
    const bullet = storageDoc.split(/\n- /).find((b) => b.startsWith(`**Version ${version}**`));
    expect(bullet, `docs/storage.md has a **Version ${version}** bullet`).toBeDefined();
    const list = /SHA-256\(JSON\.stringify\(\[([^\]]+)\]\)\)/.exec(bullet!.replace(/`/g, "").replace(/\s+/g, " "));
    expect(list, `the **Version ${version}** bullet shows SHA-256(JSON.stringify([...]))`).not.toBeNull();
    const values = list![1]!.split(",").map((item) => {
      const name = item.trim();
      if (name === '"v2"') return "v2";
      if (name === "SHA-256(envelope)") return fields.envelopeSha256; // version 1 hashed the envelope's digest too
      const key = camel(name) as keyof ChainFields;
      expect(fields, `${name} in docs/storage.md is a chain field`).toHaveProperty(key);
      return fields[key];
    });
    return sha256Hex(JSON.stringify(values));
  }

  it("describes each chain version's hash exactly as src/ledger/chain.ts computes it", () => {
    expect(documentedHash(1)).toBe(linkHash(1, fields));
    expect(documentedHash(2)).toBe(linkHash(2, fields));
  });
});
