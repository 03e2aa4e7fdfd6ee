import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, expect, vi } from "vitest";
import { clearConfigCache } from "../../src/config/store";
import type { HandoffItem } from "../../src/outbox/types";
import { useClock } from "./clock";
import { freshId, putTarget } from "./helpers";

/**
 * The setup of an outbox test file that checks its counters after every test: the controlled
 * clock at T0, fresh configuration, quiet info and warn lines, jitter fixed at its middle, and
 * afterwards the counters of every outbox the test made recounted from its rows. Call once at the
 * top of a test file; `advance` moves the clock.
 */
export function outboxTestsWithCounters(): { advance: (ms: number) => void } {
  beforeEach(() => {
    useClock();
    clearConfigCache();
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    vi.spyOn(Math, "random").mockReturnValue(0.5);
  });
  afterEach(async () => {
    await expectCountersMatchRows();
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
  return { advance: (ms: number) => void vi.setSystemTime(Date.now() + ms) };
}

/** TEST_SIGNING_SECRET of vitest.config.ts (not in the generated Env type). */
export const SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/** A factory for hand-off items. */
export function makeItem(overrides: Partial<HandoffItem> = {}): HandoffItem {
  const deliveryId = overrides.deliveryId ?? crypto.randomUUID();
  return {
    source: "study-189",
    deliveryId,
    kind: "upload.completed",
    subject: null,
    receivedAt: Date.now(),
    envelope: JSON.stringify({ specversion: "1.0", id: deliveryId, type: "com.actigraph.centrepoint.upload.completed" }),
    body: new TextEncoder().encode('{"status":"completed","uploadId":"85045"}'),
    headers: { "x-actigraph-event": "upload", "x-actigraph-delivery": deliveryId },
    ...overrides,
  };
}

/** Creates a target document in KV (the `wrangler kv key put` door) and returns its fresh outbox. */
export async function newTarget(doc: Record<string, unknown> = {}) {
  const id = freshId("t");
  await putTarget(id, { url: "https://edc.example/hooks", ...doc });
  madeThisTest.push(id);
  return { id, stub: outboxOf(id) };
}

/** The outbox stub of a target. */
export function outboxOf(id: string) {
  return env.OUTBOX.get(env.OUTBOX.idFromName(id));
}

/** A request the fake target received. */
export interface Sent {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** What a fake target answers with for the n-th request (1-based); throw to fake a network error. */
export type Responder = (req: Sent, n: number) => Response | Promise<Response>;

/**
 * Replaces fetch (tests and Durable Objects share the isolate) with a fake target that records
 * every request; `answer` swaps its behaviour mid-test.
 */
export function fakeTarget(respond: Responder = () => new Response("ok")) {
  const sent: Sent[] = [];
  let responder = respond;
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req: Sent = {
      url: String(input),
      headers: { ...(init?.headers as Record<string, string>) },
      body: new TextDecoder().decode(init?.body as Uint8Array),
    };
    sent.push(req);
    return responder(req, sent.length);
  });
  return { sent, spy, answer: (next: Responder) => void (responder = next) };
}

/** Fires the outbox's alarm now. */
export function fireAlarm(stub: ReturnType<typeof outboxOf>): Promise<boolean> {
  return runDurableObjectAlarm(stub);
}

/** The time the outbox's alarm is armed for, or null. */
export function alarmAt(stub: ReturnType<typeof outboxOf>): Promise<number | null> {
  return runInDurableObject(stub, (_, state) => state.storage.getAlarm());
}

/** Runs SQL inside the outbox (white-box checks and set-ups). */
export function sqlIn(stub: ReturnType<typeof outboxOf>, query: string, ...params: SqlStorageValue[]): Promise<Record<string, SqlStorageValue>[]> {
  return runInDurableObject(stub, (_, state) => state.storage.sql.exec(query, ...params).toArray());
}

/** Outboxes made by `newTarget` in the current test, for `expectCountersMatchRows`. */
const madeThisTest: string[] = [];

/**
 * The on-write counters of every outbox this test made agree with a recount of its rows:
 * dispatches per state and attempts per outcome and error class. Rows retention removed are
 * counted back in: every pruned dispatch was delivered, and the pruned attempts add to the total.
 * Call in afterEach, then the list starts over.
 */
export async function expectCountersMatchRows(): Promise<void> {
  for (const id of madeThisTest.splice(0)) {
    // A fresh stub: the test may have aborted the objects its stubs pointed at.
    const { counted, stored, pruned } = await runInDurableObject(outboxOf(id), (_, state) => {
      const sql = state.storage.sql;
      // Delivering rows are counted as pending, and an attempt in flight not at all (src/outbox/counters.ts);
      // a dispatch's latest attempt may be kept on its row (src/outbox/transitions.ts IN_ROW).
      const rows = [
        ...sql.exec("SELECT 'state:' || REPLACE(state, 'delivering', 'pending') AS name, COUNT(*) AS n FROM dispatches GROUP BY 1"),
        ...sql.exec(
          "SELECT 'attempts:' || outcome || ':' || COALESCE(error_class, '') AS name, COUNT(*) AS n FROM attempts WHERE outcome != 'in_flight' GROUP BY outcome, error_class",
        ),
        ...sql.exec(
          "SELECT 'attempts:' || json_extract(attempt, '$.outcome') || ':' AS name, COUNT(*) AS n FROM dispatches WHERE json_extract(attempt, '$.outcome') = 'success' GROUP BY 1",
        ),
      ];
      const counters = sql.exec("SELECT name, value FROM counters WHERE (name LIKE 'state:%' OR name LIKE 'attempts:%') AND value != 0").toArray();
      const prunedRows = sql.exec("SELECT name, value FROM counters WHERE name LIKE 'pruned:%'").toArray();
      return {
        counted: rows.reduce<Record<string, number>>((o, r) => ({ ...o, [r.name as string]: (o[r.name as string] ?? 0) + (r.n as number) }), {}),
        stored: Object.fromEntries(counters.map((r) => [r.name, r.value as number])) as Record<string, number>,
        pruned: Object.fromEntries(prunedRows.map((r) => [r.name, r.value as number])) as Record<string, number>,
      };
    });
    const dispatches = pruned["pruned:dispatches"] ?? 0;
    const attempts = pruned["pruned:attempts"] ?? 0;
    if (dispatches === 0 && attempts === 0) {
      expect(stored).toEqual(counted);
      continue;
    }
    const states = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).filter(([k]) => k.startsWith("state:")));
    const attemptTotal = (o: Record<string, number>) => Object.entries(o).reduce((n, [k, v]) => (k.startsWith("attempts:") ? n + v : n), 0);
    expect(states(stored)).toEqual({ ...states(counted), "state:delivered": (counted["state:delivered"] ?? 0) + dispatches });
    expect(attemptTotal(stored)).toBe(attemptTotal(counted) + attempts);
  }
}
