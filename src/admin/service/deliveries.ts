import { isValidId } from "../../config/schemas";
import { configExists, listConfigs } from "../../config/store";
import type { Bindings } from "../../env";
import type { DeliveryRecord, HandoffView, ListFilter } from "../../ledger/queries";
import type { AttemptView, DispatchView } from "../../outbox/views";
import { PULL_HANDOFF } from "../../pull/plan";
import { type DeliveryPull, pullOfDelivery } from "./pull";
import { ledgerOf, outboxOf } from "./stubs";

/**
 * Reading deliveries across ledgers, one path for the JSON API and the dashboard: the merged,
 * newest-first list with its cursor, and a delivery's detail with each target's dispatch. Times
 * are epoch ms; the JSON routes turn them into ISO strings.
 */

/** Filter of the cross-source list: the ledger's filter, plus a source and a cursor instead of `before`. */
export type DeliveryQuery = Omit<ListFilter, "before"> & {
  source?: string;
  /** A `next` value from an earlier page. */
  cursor?: string;
};

/** A delivery as listed: the ledger's record and its source. */
export type ListedDelivery = DeliveryRecord & { source: string };

/** One target's part of a delivery: the ledger's hand-off, and the outbox's dispatch with its attempts once handed over. */
export interface DeliveryTarget {
  target: string;
  handoff: HandoffView;
  dispatch: DispatchView | null;
  attempts: AttemptView[];
}

/** A delivery with its body, envelope (parsed), every target's part and its pull side. */
export type DeliveryDetail = ListedDelivery & { body: Uint8Array; envelope: unknown; targets: DeliveryTarget[]; pull: DeliveryPull };

/** Cursor of the merged, newest-first list: received time, then source, then seq. */
interface Cursor {
  at: number;
  source: string;
  seq: number;
}

/** A page of deliveries across sources, newest first; `next` continues it, null at the end. An unreadable cursor is an error. */
export async function listDeliveries(
  env: Bindings,
  q: DeliveryQuery,
): Promise<{ ok: true; items: ListedDelivery[]; next: string | null } | { ok: false; error: "bad_cursor" }> {
  const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  if (cursor === null) return { ok: false, error: "bad_cursor" };
  const sources = q.source
    ? (await configExists(env.CONFIG, "source", q.source))
      ? [q.source]
      : []
    : (await listConfigs(env.CONFIG, "source")).map((s) => s.id).filter(isValidId);
  // Each ledger returns its newest `limit + 1` rows after the cursor; the merge keeps the newest `limit` overall.
  const perSource = await Promise.all(
    sources.map(async (source) => {
      const { source: _source, cursor: _cursor, ...rest } = q;
      const filter: ListFilter = {
        ...rest,
        before: cursor ? { at: cursor.at, seq: source === cursor.source ? cursor.seq : source < cursor.source ? Number.MAX_SAFE_INTEGER : 0 } : undefined,
        limit: q.limit + 1,
      };
      return (await ledgerOf(env, source).list(filter)).map((r) => ({ ...r, source }));
    }),
  );
  const merged = perSource.flat().sort((a, b) => b.receivedAt - a.receivedAt || b.source.localeCompare(a.source) || b.seq - a.seq);
  const page = merged.slice(0, q.limit);
  const last = page[page.length - 1];
  const next = merged.length > q.limit && last ? encodeCursor({ at: last.receivedAt, source: last.source, seq: last.seq }) : null;
  return { ok: true, items: page, next };
}

/** One delivery with body, envelope and each target's hand-off, dispatch and attempts; null when unknown (or its source is). */
export async function getDeliveryDetail(env: Bindings, source: string, id: string): Promise<DeliveryDetail | null> {
  if (!(await configExists(env.CONFIG, "source", source))) return null;
  const detail = await ledgerOf(env, source).get(id);
  if (!detail) return null;
  const { body, envelope, handoffs, ...record } = detail;
  const targets = await Promise.all(
    // The Puller's hand-off (the enrichment job) is no target: it shows as `pull.enrichment`.
    handoffs
      .filter((h) => h.targetId !== PULL_HANDOFF)
      .map(async (handoff): Promise<DeliveryTarget> => {
        const part = handoff.handedAt === null ? null : await outboxOf(env, handoff.targetId).getDispatch(source, id);
        return { target: handoff.targetId, handoff, dispatch: part?.dispatch ?? null, attempts: part?.attempts ?? [] };
      }),
  );
  const parsed = parseEnvelope(envelope);
  return { ...record, source, body, envelope: parsed, targets, pull: await pullOfDelivery(env, source, id, parsed) };
}

/** The sources whose ledger holds a delivery with exactly this id (a delivery id is unique within a source only). */
export async function findDeliveryById(env: Bindings, id: string, source?: string): Promise<string[]> {
  const sources = source ? [source] : (await listConfigs(env.CONFIG, "source")).map((s) => s.id).filter(isValidId);
  const hits = await Promise.all(sources.map(async (s) => ((await configExists(env.CONFIG, "source", s)) && (await ledgerOf(env, s).get(id)) ? s : null)));
  return hits.filter((s): s is string => s !== null);
}

function parseEnvelope(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function encodeCursor(c: Cursor): string {
  return btoa(JSON.stringify([c.at, c.source, c.seq])).replace(/=+$/, "");
}

function decodeCursor(text: string): Cursor | null {
  try {
    const [at, source, seq] = JSON.parse(atob(text)) as unknown[];
    if (typeof at === "number" && typeof source === "string" && typeof seq === "number") return { at, source, seq };
  } catch {
    /* fall through */
  }
  return null;
}
