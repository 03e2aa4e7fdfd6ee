import type { Bindings } from "../env";
import { log } from "../lib/log";
import type { HandoffItem } from "../outbox/types";
import { decorateItem } from "./enrichment";
import { buildItems, type DueHandoff, dueHandoffs, markFailed, markHanded } from "./handoff";
import { ledgerSource } from "./queries";

/**
 * The hand-off lanes of a ledger: due hand-off rows (handoff.ts) handed to the targets' outboxes,
 * off the response path. Every target has its own lane: one hand-off in flight per target (so a
 * target's items go in order), and a hand-off that is slow or never answered delays only its own
 * target's rows, which go in the target's next hand-off, started as soon as this one ends.
 * Failures are retried with backoff by the alarm. Talks to its Durable Object through `HandoffHost`.
 */

/** Rounds of hand-offs `settle` waits for at most (each target's next hand-off starts when its last one ends). */
const HANDOFF_ROUNDS = 100;

/** Where a target's items are handed off (its outbox, or the Puller for the pull job). */
export interface OutboxPort {
  acceptHandoff(targetId: string, items: HandoffItem[]): Promise<unknown>;
}

/** What the lanes need of their Durable Object. */
export interface HandoffHost {
  sql: SqlStorage;
  env: Pick<Bindings, "RELAY_PUBLIC_URL" | "FILE_LINK_SECRET">;
  outboxFor(targetId: string, source: string): OutboxPort;
  waitUntil(promise: Promise<unknown>): void;
  /** Arms the alarm at the earliest pending hand-off or due job; called when the last hand-off in flight ends. */
  ensureAlarm(): Promise<void>;
}

export interface HandoffLanes {
  /**
   * Starts hand-offs of due rows in the background; never throws. `targets`: the only targets with
   * new rows; when a hand-off to each of them is in flight already, their successors take the
   * rows (no query now).
   */
  soon(targets?: readonly string[]): void;
  /** Starts one hand-off for every target with due rows and none in flight; returns the started ones. */
  start(now: number): Promise<void>[];
  /** Waits until no hand-off is in flight, those started meanwhile included (at most HANDOFF_ROUNDS rounds). */
  settle(): Promise<void>;
}

/** How hand-off rows with a pull plan become items: a target's enriched envelope (links made now), or the Puller's job. */
export function decorator(sql: SqlStorage, env: HandoffHost["env"]) {
  return decorateItem(sql, { now: Date.now(), publicUrl: env.RELAY_PUBLIC_URL ?? "", linkKey: env.FILE_LINK_SECRET || null });
}

/** The lanes of one ledger instance (hand-offs in flight live in memory; the rows are the truth). */
export function handoffLanes(host: HandoffHost): HandoffLanes {
  const { sql } = host;
  const inFlight = new Map<string, Promise<void>>();

  const soon = (targets?: readonly string[]): void => {
    if (targets?.every((t) => inFlight.has(t))) return;
    try {
      start(Date.now());
    } catch (e) {
      log("error", "ledger hand-off failed; the alarm retries", { source: ledgerSource(sql), error: e instanceof Error ? e.message : String(e) });
    }
  };

  const start = (now: number): Promise<void>[] => {
    const due = dueHandoffs(sql, now, [...inFlight.keys()]);
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
      const handoff = handOff(source, targetId, rows, items).finally(() => {
        inFlight.delete(targetId);
        // Rows recorded meanwhile: this target's waited for this hand-off; the alarm covers the rest.
        soon();
        if (inFlight.size === 0) host.ensureAlarm().catch((e: unknown) => log("error", "ledger could not re-arm its alarm", { source, error: String(e) }));
      });
      inFlight.set(targetId, handoff);
      host.waitUntil(handoff);
      return handoff;
    });
  };

  /** Hands one target its rows' items; marks them handed, or failed with backoff. Never throws. */
  const handOff = async (source: string, targetId: string, rows: DueHandoff[], items: HandoffItem[]): Promise<void> => {
    try {
      await host.outboxFor(targetId, source).acceptHandoff(targetId, items);
      markHanded(sql, rows, Date.now());
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log("warn", "handoff failed", { source, target: targetId, count: rows.length, error: message });
      markFailed(sql, rows, message, Date.now(), Math.random);
    }
  };

  const settle = async (): Promise<void> => {
    for (let i = 0; i < HANDOFF_ROUNDS && inFlight.size > 0; i++) await Promise.allSettled([...inFlight.values()]);
  };

  return { soon, start, settle };
}
