import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { bumpCounters, ROLLUP_KEEP_HOURS } from "../../src/lib/counters";
import { growth, quantile } from "../../src/lib/trends";
import { clockForEachTest, DAY, HOUR, T0 } from "../support/clock";
import { freshId, ledgerOf } from "../support/helpers";
import { recordInput } from "../support/ledger";

/** Hourly snapshots of the counters (lib/counters.ts) and the trends read from them (lib/trends.ts). */
const { advance } = clockForEachTest();

const record = (ledger: ReturnType<typeof ledgerOf>, source: string, deliveryId = crypto.randomUUID()) =>
  ledger.record(recordInput({ source, deliveryId, receivedAt: Date.now() }));

describe("hourly rollups of a source", () => {
  it("counts each hour's deliveries, duplicates and refusals, hours without any as 0", async () => {
    const source = freshId();
    const ledger = ledgerOf(source);
    await record(ledger, source, "d-1");
    await record(ledger, source, "d-1"); // a duplicate
    await ledger.countRejection("auth_mismatch");
    advance(2 * HOUR); // an hour with nothing in between
    await record(ledger, source);
    await record(ledger, source);
    advance(10 * 60_000);
    const trend = await ledger.trends(4);
    expect(trend.map((p) => new Date(p.at).toISOString())).toEqual([-1, 0, 1, 2].map((h) => new Date(T0 + h * HOUR).toISOString()));
    expect(trend.map((p) => p.values)).toEqual([
      { deliveries: 0, duplicates: 0, refusals: 0 },
      { deliveries: 1, duplicates: 1, refusals: 1 },
      { deliveries: 0, duplicates: 0, refusals: 0 },
      { deliveries: 2, duplicates: 0, refusals: 0 },
    ]);
  });

  it("keeps a closed hour across a crash: the snapshot is written with the change that follows it", async () => {
    const source = freshId();
    await record(ledgerOf(source), source);
    await record(ledgerOf(source), source);
    advance(HOUR);
    await record(ledgerOf(source), source); // closes hour 0 in the same transaction
    await abortAllDurableObjects(); // the instance dies; a new one reads storage
    const trend = await ledgerOf(source).trends(2);
    expect(trend.map((p) => p.values.deliveries)).toEqual([2, 1]);
    const snapshots = await runInDurableObject(ledgerOf(source), (_, state) => state.storage.sql.exec("SELECT hour FROM counter_hours").toArray());
    expect(snapshots).toEqual([{ hour: T0 / HOUR }]);
  });

  it("does not show the counters of before an upgrade as the first hour's activity", async () => {
    const source = freshId();
    const ledger = ledgerOf(source);
    await record(ledger, source);
    // As an object upgraded from a version without snapshots: counters kept, no hour yet.
    await runInDurableObject(ledger, (_, state) => {
      state.storage.sql.exec("UPDATE counter_set SET hour = NULL");
      state.storage.sql.exec("DELETE FROM counter_hours");
    });
    advance(HOUR);
    await record(ledger, source);
    expect((await ledger.trends(1)).map((p) => p.values.deliveries)).toEqual([1]);
  });

  it("keeps 90 days of hours: older snapshots are deleted when a newer one is written", async () => {
    const source = freshId();
    const ledger = ledgerOf(source);
    await record(ledger, source);
    advance(HOUR);
    await record(ledger, source);
    const hours = () =>
      runInDurableObject(ledger, (_, state) =>
        state.storage.sql
          .exec<{ hour: number }>("SELECT hour FROM counter_hours ORDER BY hour")
          .toArray()
          .map((r) => r.hour),
      );
    expect(await hours()).toEqual([T0 / HOUR]);
    advance(ROLLUP_KEEP_HOURS * HOUR);
    await record(ledger, source);
    expect(await hours()).toEqual([T0 / HOUR + 1]);
  });
});

describe("trend measures", () => {
  it("growth never reports a correction as negative activity", () => {
    expect(growth("a:")({ "a:x": 5, "a:y": 1 }, { "a:x": 7, "a:y": 1, "b:z": 9 })).toBe(2);
    expect(growth("a:")({ "a:x": 5 }, { "a:x": 4 })).toBe(0);
  });

  it("quantile answers the upper bound of the bucket the rank falls in, null for no observations", () => {
    const bounds = [50, 100, 250];
    const before = { "l:0": 10 };
    const after = { "l:0": 15, "l:1": 4, "l:2": 1 }; // the hour: 5 ≤ 50 ms, 4 ≤ 100 ms, 1 ≤ 250 ms
    expect(quantile("l:", bounds, 0.5)(before, after)).toBe(50);
    expect(quantile("l:", bounds, 0.9)(before, after)).toBe(100);
    expect(quantile("l:", bounds, 0.99)(before, after)).toBe(250);
    expect(quantile("l:", bounds, 0.5)(after, after)).toBeNull();
    expect(quantile("l:", bounds, 0.99)({}, { "l:3": 1 })).toBe(250); // the overflow bucket: its lower bound
  });
});

describe("bumpCounters", () => {
  it("writes one snapshot row per hour with changes, none per change", async () => {
    const source = freshId();
    const written = await runInDurableObject(ledgerOf(source), (_, state) => {
      const sql = state.storage.sql;
      bumpCounters(sql, { x: 1 }, T0 + DAY);
      const n1 = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM counter_hours").one().n;
      bumpCounters(sql, { x: 1 }, T0 + DAY + 60_000);
      const n2 = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM counter_hours").one().n;
      bumpCounters(sql, { x: 1 }, T0 + DAY + HOUR);
      const n3 = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM counter_hours").one().n;
      return [n1, n2, n3];
    });
    expect(written).toEqual([0, 0, 1]);
  });
});
