import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterSql } from "../../src/lib/meter";
import { freshId, ledgerOf, postWebhook, putSource } from "../support/helpers";

describe("meterSql", () => {
  it("adds up the rows each statement read and wrote", async () => {
    await runInDurableObject(ledgerOf(freshId("meter")), (_i, state) => {
      const { sql, usage, settle } = meterSql(state.storage.sql);
      sql.exec("CREATE TABLE metered (n INTEGER)");
      sql.exec("INSERT INTO metered (n) VALUES (1), (2), (3)");
      expect(sql.exec("SELECT n FROM metered ORDER BY n").toArray()).toHaveLength(3);
      settle();
      expect(usage.rowsWritten).toBeGreaterThanOrEqual(3);
      expect(usage.rowsRead).toBeGreaterThanOrEqual(3);
    });
  });

  it("shows a ledger's requests and rows in its metrics", async () => {
    const source = freshId();
    await putSource(source);
    for (let i = 0; i < 3; i++) await postWebhook(source);
    const { usage } = await ledgerOf(source).metrics();
    expect(usage.requests).toBe(3);
    expect(usage.rowsWritten).toBeGreaterThanOrEqual(3);
  });
});
