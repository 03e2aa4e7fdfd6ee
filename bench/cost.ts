/**
 * Issue 17's cost and capacity measures, used by bench/run.ts: billing units per event from the
 * relay's own meters (/admin/metrics `relay_object_*`: every cursor's rowsRead/rowsWritten, every
 * hot-path RPC call and alarm run), a trickle sender (events one at a time, as a study sends
 * them), the price of an event at Cloudflare's published prices, and a rate ladder for fan-out
 * capacity. Everything on 127.0.0.1; every loop bounded in count and time.
 */
import { http } from "../harness/http/client.ts";
import type { Target } from "../harness/targets/controllable-target.ts";
import { sleep, waitFor } from "../harness/wait.ts";
import { postUpload } from "./post.ts";

/**
 * Cloudflare's published prices (USD), Workers Paid plan, beyond the included amounts:
 * developers.cloudflare.com/durable-objects/platform/pricing (Durable Objects: requests, SQLite
 * rows read and written) and developers.cloudflare.com/workers/platform/pricing (Workers requests),
 * as quoted in this repository since 2026-11-27 and re-read for issue 17 on 2026-12-05. Durable
 * Object duration (GB-s) and storage are not modelled: workerd does not meter them locally.
 */
export const PRICE = { workerRequestPerMillion: 0.3, doRequestPerMillion: 0.15, rowReadPerMillion: 0.001, rowWrittenPerMillion: 1.0 };
export const PRICE_SOURCE =
  "developers.cloudflare.com/durable-objects/platform/pricing and /workers/platform/pricing (Workers Paid), as read 2026-12-05; duration and storage not modelled";

/** Durable Object billing units (totals, or per event). */
export interface Units {
  requests: number;
  rowsRead: number;
  rowsWritten: number;
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Billing units so far, summed over the objects whose label (`ledger:<source>`, `outbox:<target>`) matches. */
export async function billingUnits(relayUrl: string, adminToken: string, objects: (label: string) => boolean): Promise<Units> {
  const text = (await http(`${relayUrl}/admin/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })).text;
  const sum = (family: string) =>
    [...text.matchAll(new RegExp(`^${family}\\{object="([^"]+)"\\} (\\d+)$`, "gm"))].reduce((n, m) => (objects(m[1]!) ? n + Number(m[2]) : n), 0);
  return { requests: sum("relay_object_requests_total"), rowsRead: sum("relay_object_rows_read_total"), rowsWritten: sum("relay_object_rows_written_total") };
}

/** Units per event between two readings. */
export function unitsBetween(before: Units, after: Units, events: number): Units {
  const n = Math.max(1, events);
  return {
    requests: round((after.requests - before.requests) / n, 2),
    rowsRead: round((after.rowsRead - before.rowsRead) / n, 1),
    rowsWritten: round((after.rowsWritten - before.rowsWritten) / n, 1),
  };
}

/** Price of a million events: one Worker request each, plus their Durable Object units. */
export function costPerMillion(u: Units): number {
  return round(
    PRICE.workerRequestPerMillion + u.requests * PRICE.doRequestPerMillion + u.rowsRead * PRICE.rowReadPerMillion + u.rowsWritten * PRICE.rowWrittenPerMillion,
    2,
  );
}

/** The trickle: how many events, how fast (one at a time, each POST answered before the next). */
export const TRICKLE = { events: 50, perSecond: 5, warmUp: 3 } as const;

/**
 * Sends TRICKLE.events events to `source` one at a time at TRICKLE.perSecond (after TRICKLE.warmUp
 * untimed ones, so the objects have started), waits (bounded) until every receiver has every one,
 * and returns the billing units per event of the objects `involved`, read before the objects go idle.
 */
export async function trickle(
  relayUrl: string,
  adminToken: string,
  secret: string,
  source: string,
  receivers: Target[],
  involved: (label: string) => boolean,
): Promise<Units> {
  const send = async (id: string) => {
    const r = await postUpload(relayUrl, source, id, secret);
    if (r.json?.status !== "accepted") throw new Error(`trickle ${source}: ${id} answered ${r.status} ${r.text.slice(0, 120)}`);
  };
  const arrived = (ids: string[]) => () => receivers.every((t) => ids.every((id) => t.delivered().has(id)));
  const warm = Array.from({ length: TRICKLE.warmUp }, (_, i) => `${source}-warm-${i}`);
  for (const id of warm) await send(id);
  await waitFor(`${source}: warm-up delivered`, arrived(warm), { timeoutMs: 30_000, intervalMs: 50 });
  const before = await billingUnits(relayUrl, adminToken, involved);
  const ids = Array.from({ length: TRICKLE.events }, (_, i) => `${source}-${i}`);
  const start = performance.now();
  for (const [i, id] of ids.entries()) {
    const wait = start + (i * 1000) / TRICKLE.perSecond - performance.now();
    if (wait > 1) await sleep(wait);
    await send(id);
  }
  await waitFor(`${source}: every trickled event delivered`, arrived(ids), { timeoutMs: 30_000, intervalMs: 50 });
  return unitsBetween(before, await billingUnits(relayUrl, adminToken, involved), ids.length);
}

/** The fan-out capacity ladder: rates tried in order, seconds per step, and what a step must show. */
export const CAPACITY = { rates: [25, 50, 75, 100, 150, 200, 300, 400, 600, 800], stepSeconds: 6, p99Ms: 1000, drainWaitMs: 20_000 } as const;

/** One step of a ladder: whether every event reached every receiver (in time, p99 under the bound), and the figures. */
export interface Step {
  rate: number;
  ok: boolean;
  p99: number | null;
  note: string;
}

export interface CapacityResult {
  /** The highest rate whose step passed (0 when none did). */
  capacity: number;
  steps: Step[];
}

/** Climbs CAPACITY.rates while each step passes; stops at the first that does not. */
export async function ladder(step: (rate: number) => Promise<Step>): Promise<CapacityResult> {
  const steps: Step[] = [];
  for (const rate of CAPACITY.rates) {
    const s = await step(rate);
    steps.push(s);
    if (!s.ok) break;
  }
  const passed = steps.filter((s) => s.ok);
  return { capacity: passed.length ? passed[passed.length - 1]!.rate : 0, steps };
}

/** Per-event units of a run, for the report. */
export function perEvent(u: Units): string {
  return `${u.rowsWritten} written, ${u.rowsRead} read, ${u.requests} DO requests`;
}
