import { performance } from "node:perf_hooks";
import type { Target } from "./targets/controllable-target.ts";

/**
 * The suite's own book of what it sent and what it expects where: every delivery POSTed, what
 * the relay answered, and which targets must receive it. From it come the "lost" check and the
 * final tally line.
 */

/** One delivery id the suite sent (possibly several times). */
export interface SentDelivery {
  id: string;
  source: string;
  phase: string;
  body: string;
  headers: Record<string, string>;
  /** performance.now() of the first POST. */
  sentAt: number;
  /** performance.now() when the first 200 arrived; null until one has. */
  acceptedAt: number | null;
  /** The relay said 200 (accepted or duplicate) at least once: it holds the delivery. */
  confirmed: boolean;
  /** Kind the relay reported (decides which targets want it). */
  kind: string | null;
}

/** Counts of POST outcomes. */
export interface PostCounts {
  sent: number;
  accepted: number;
  duplicates: number;
  noAnswer: number;
  other: number;
}

export class Book {
  readonly deliveries = new Map<string, SentDelivery>();
  readonly counts: PostCounts = { sent: 0, accepted: 0, duplicates: 0, noAnswer: 0, other: 0 };
  /** Which targets want a confirmed delivery: decided by the test's configuration. */
  private readonly routes: (d: SentDelivery) => string[];

  constructor(routes: (d: SentDelivery) => string[]) {
    this.routes = routes;
  }

  /** Records a POST about to go out; returns the entry for `id` (created on first use). */
  noteSend(entry: Omit<SentDelivery, "sentAt" | "acceptedAt" | "confirmed" | "kind">): SentDelivery {
    this.counts.sent++;
    const existing = this.deliveries.get(entry.id);
    if (existing) return existing;
    const created: SentDelivery = { ...entry, sentAt: performance.now(), acceptedAt: null, confirmed: false, kind: null };
    this.deliveries.set(entry.id, created);
    return created;
  }

  /** Records the answer to one POST of `d`; `status` null when no answer came. */
  noteAnswer(d: SentDelivery, status: number | null, json: { status?: string; kind?: string } | undefined): void {
    if (status === null) {
      this.counts.noAnswer++;
      return;
    }
    if (status === 200 && (json?.status === "accepted" || json?.status === "duplicate")) {
      if (json.status === "accepted") this.counts.accepted++;
      else this.counts.duplicates++;
      if (!d.confirmed) d.acceptedAt = performance.now();
      d.confirmed = true;
      d.kind = json.kind ?? d.kind;
      return;
    }
    this.counts.other++;
  }

  /** Target names a delivery must reach. */
  targetsOf(d: SentDelivery): string[] {
    return d.confirmed ? this.routes(d) : [];
  }

  /** (delivery, target) pairs confirmed by the relay but not (yet) answered 2xx by the target. */
  missing(targets: readonly Target[]): { id: string; target: string; phase: string }[] {
    const byName = new Map(targets.map((t) => [t.name, t.delivered()]));
    const out: { id: string; target: string; phase: string }[] = [];
    for (const d of this.deliveries.values()) {
      for (const t of this.targetsOf(d)) if (!byName.get(t)?.has(d.id)) out.push({ id: d.id, target: t, phase: d.phase });
    }
    return out;
  }

  /** Arrivals at a target that it should never have received (not confirmed, or not routed to it). */
  unexpected(target: Target): string[] {
    const out: string[] = [];
    for (const a of target.arrivals) {
      const d = a.webhookId === null ? undefined : this.deliveries.get(a.webhookId);
      if (!d || !this.targetsOf(d).includes(target.name)) out.push(a.webhookId ?? "(no webhook-id)");
    }
    return out;
  }

  /** Confirmed delivery ids. */
  confirmedCount(): number {
    let n = 0;
    for (const d of this.deliveries.values()) if (d.confirmed) n++;
    return n;
  }
}

/** Repeats at a target: 2xx answers beyond the first for the same webhook-id. */
export function repeats(target: Target): number {
  let n = 0;
  for (const count of target.delivered().values()) n += count - 1;
  return n;
}
