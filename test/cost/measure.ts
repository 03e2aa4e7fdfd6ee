import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { expect, vi } from "vitest";
import { type StatementUsage, tallyStatements, type Usage } from "../../src/lib/meter";
import { freshId, ledgerOf, postWebhook, putSource, putTarget } from "../support/helpers";
import { outboxOf } from "../support/outbox";

/**
 * Billing units per accepted event, from the objects' own meters (lib/meter.ts): a fresh source
 * with `targets` fresh targets (all answering 2xx through the faked fetch), `warmUp` events first
 * (objects started, first-time rows written), then `events` measured, either one at a time with
 * every alarm run between (trickle: how a study sends them) or all at once before the alarms run
 * (burst: how load arrives; the clock stands still). Time is faked by the caller (Date only), so
 * alarms run only when fired here.
 */
export interface PerEvent {
  requests: number;
  rowsRead: number;
  rowsWritten: number;
  /** The same per object: `ledger`, `outbox:<i>`. */
  byObject: Record<string, Usage>;
  /** The measured events' rows per statement (lib/meter.ts tallyStatements). */
  tally: Map<string, StatementUsage>;
}

/** Time between two events of the trickle (five a second, as the bench sends them). */
const TRICKLE_GAP_MS = 200;

type Stub = ReturnType<typeof ledgerOf> | ReturnType<typeof outboxOf>;

/** An instance's meter, settled (white box: the field is private). */
function usageOf(stub: Stub): Promise<Usage> {
  return runInDurableObject(stub, (instance: unknown) => {
    const meter = (instance as { meter: { usage: Usage; settle(): void } }).meter;
    meter.settle();
    return { ...meter.usage };
  });
}

/** Runs every alarm (ledger first: its pushes; then each outbox's sends) until none is armed, at most `rounds` rounds. */
async function drain(stubs: Stub[], rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    let ran = false;
    for (const stub of stubs) {
      const at = await runInDurableObject(stub, (_i, state) => state.storage.getAlarm());
      if (at !== null && at <= Date.now()) ran = (await runDurableObjectAlarm(stub)) || ran;
    }
    if (!ran) return;
  }
}

export async function measure(opts: { targets: number; events: number; mode: "trickle" | "burst"; warmUp?: number }): Promise<PerEvent> {
  const source = freshId("cost");
  await putSource(source);
  const targets = Array.from({ length: opts.targets }, () => freshId("t"));
  for (const t of targets) await putTarget(t, { url: "https://edc.example/hooks", sources: [source] });
  const ledger = ledgerOf(source);
  const outboxes = targets.map(outboxOf);
  const stubs: Stub[] = [ledger, ...outboxes];
  const send = async () => expect((await postWebhook(source, { deliveryId: crypto.randomUUID() })).status).toBe(200);

  for (let i = 0; i < (opts.warmUp ?? 3); i++) {
    await send();
    await drain(stubs);
  }
  const before = await Promise.all(stubs.map(usageOf));
  const tally = tallyStatements(true)!;
  if (opts.mode === "trickle") {
    for (let i = 0; i < opts.events; i++) {
      vi.setSystemTime(Date.now() + TRICKLE_GAP_MS);
      await send();
      await drain(stubs);
    }
  } else {
    await Promise.all(Array.from({ length: opts.events }, send));
    await drain(stubs);
  }
  const after = await Promise.all(stubs.map(usageOf));
  tallyStatements(false);
  for (const o of outboxes) expect((await o.health()).counts).toMatchObject({ delivered: (opts.warmUp ?? 3) + opts.events });

  const names = ["ledger", ...targets.map((_t, i) => `outbox:${i}`)];
  const byObject: Record<string, Usage> = {};
  const total = { requests: 0, rowsRead: 0, rowsWritten: 0 };
  after.forEach((a, i) => {
    const d = {
      requests: (a.requests - before[i]!.requests) / opts.events,
      rowsRead: (a.rowsRead - before[i]!.rowsRead) / opts.events,
      rowsWritten: (a.rowsWritten - before[i]!.rowsWritten) / opts.events,
    };
    byObject[names[i]!] = d;
    total.requests += d.requests;
    total.rowsRead += d.rowsRead;
    total.rowsWritten += d.rowsWritten;
  });
  return { ...total, byObject, tally };
}

/** A statement tally as lines, most rows written first (for a failing budget's message, and the profile in docs/benchmarks.md). */
export function tallyLines(tally: Map<string, StatementUsage>, events: number): string {
  return [...tally]
    .sort((a, b) => b[1].rowsWritten - a[1].rowsWritten || b[1].rowsRead - a[1].rowsRead)
    .map(([q, s]) => `${(s.rowsWritten / events).toFixed(2)} w ${(s.rowsRead / events).toFixed(2)} r ${(s.runs / events).toFixed(2)} runs | ${q.slice(0, 160)}`)
    .join("\n");
}
