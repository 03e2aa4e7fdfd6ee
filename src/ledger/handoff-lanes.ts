import type { Bindings } from "../env";
import { log } from "../lib/log";
import type { OutboxItem } from "../outbox/types";
import { decorateItem } from "./enrichment";
import { buildItems, type DueHandoff, dueHandoffs, markFailed, markHanded } from "./handoff";
import { ledgerSource } from "./queries";

/**
 * The hand-off lanes of a ledger: pushes of due hand-off rows (handoff.ts) to the targets'
 * outboxes, off the response path. Every target has its own lane: one push in flight per target
 * (so a target's items go in order), and a push that is slow or never answered delays only its
 * own target's rows, which go in the target's next push, started as soon as this one ends.
 * Failures are retried with backoff by the alarm. Talks to its Durable Object through `PushHost`.
 */

/** Rounds of pushes `settle` waits for at most (each target's next push starts when its last one ends). */
const PUSH_ROUNDS = 100;

/** Where a target's items are pushed (its outbox, or the Puller for the pull job). */
export interface OutboxPort {
  enqueue(targetId: string, items: OutboxItem[]): Promise<unknown>;
}

/** What the lanes need of their Durable Object. */
export interface PushHost {
  sql: SqlStorage;
  env: Pick<Bindings, "RELAY_PUBLIC_URL" | "FILE_LINK_SECRET">;
  outboxFor(targetId: string, source: string): OutboxPort;
  waitUntil(promise: Promise<unknown>): void;
  /** Arms the alarm at the earliest pending hand-off or due job; called when the last push in flight ends. */
  ensureAlarm(): Promise<void>;
}

export interface PushLanes {
  /**
   * Starts pushes of due rows in the background; never throws. `targets`: the only targets with
   * new rows; when a push to each of them is in flight already, those pushes' successors take the
   * rows (no query now).
   */
  soon(targets?: readonly string[]): void;
  /** Starts one push for every target with due rows and no push in flight; returns the started pushes. */
  start(now: number): Promise<void>[];
  /** Waits until no push is in flight, those started meanwhile included (at most PUSH_ROUNDS rounds). */
  settle(): Promise<void>;
}

/** How hand-off rows with a pull plan become items: a target's enriched envelope (links made now), or the Puller's job. */
export function decorator(sql: SqlStorage, env: PushHost["env"]) {
  return decorateItem(sql, { now: Date.now(), publicUrl: env.RELAY_PUBLIC_URL ?? "", linkKey: env.FILE_LINK_SECRET || null });
}

/** The lanes of one ledger instance (pushes in flight live in memory; the rows are the truth). */
export function pushLanes(host: PushHost): PushLanes {
  const { sql } = host;
  const pushes = new Map<string, Promise<void>>();

  const soon = (targets?: readonly string[]): void => {
    if (targets?.every((t) => pushes.has(t))) return;
    try {
      start(Date.now());
    } catch (e) {
      log("error", "ledger push failed; the alarm retries", { source: ledgerSource(sql), error: e instanceof Error ? e.message : String(e) });
    }
  };

  const start = (now: number): Promise<void>[] => {
    const due = dueHandoffs(sql, now, [...pushes.keys()]);
    if (due.length === 0) return [];
    const source = ledgerSource(sql);
    let groups: ReturnType<typeof buildItems>;
    try {
      groups = buildItems(sql, source, due, decorator(sql, host.env));
    } catch (e) {
      // A row that cannot be read: retry later with backoff, visible on the delivery's hand-offs.
      markFailed(sql, due, `could not read the delivery: ${e instanceof Error ? e.message : String(e)}`, now, Math.random);
      log("warn", "handoff failed", { source, count: due.length, error: e instanceof Error ? e.message : String(e) });
      return [];
    }
    return [...groups].map(([targetId, { rows, items }]) => {
      const push = pushTo(source, targetId, rows, items).finally(() => {
        pushes.delete(targetId);
        // Rows recorded meanwhile: this target's waited for this push; the alarm covers the rest.
        soon();
        if (pushes.size === 0) host.ensureAlarm().catch((e: unknown) => log("error", "ledger could not re-arm its alarm", { source, error: String(e) }));
      });
      pushes.set(targetId, push);
      host.waitUntil(push);
      return push;
    });
  };

  /** Hands one target its rows' items; marks them handed, or failed with backoff. Never throws. */
  const pushTo = async (source: string, targetId: string, rows: DueHandoff[], items: OutboxItem[]): Promise<void> => {
    try {
      await host.outboxFor(targetId, source).enqueue(targetId, items);
      markHanded(sql, rows, Date.now());
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log("warn", "handoff failed", { source, target: targetId, count: rows.length, error: message });
      markFailed(sql, rows, message, Date.now(), Math.random);
    }
  };

  const settle = async (): Promise<void> => {
    for (let i = 0; i < PUSH_ROUNDS && pushes.size > 0; i++) await Promise.allSettled([...pushes.values()]);
  };

  return { soon, start, settle };
}
