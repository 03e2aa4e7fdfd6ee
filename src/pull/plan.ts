/**
 * What a delivery asks of the pull side when it is recorded (docs/pull.md): which targets wait for
 * enrichment and how long, and whether the source's Puller gets a job (enrichment, once per
 * delivery, and the automatic raw-data request). Pure; ingress and reconciliation's backfills call
 * it through `buildDeliveryRecord`.
 *
 * The job reaches the Puller the way events reach outboxes: as a hand-off row of the ledger under
 * the reserved id PULL_HANDOFF (never a target id: those start with a letter or digit), handed off
 * at least once with the ledger's retries. Enriching targets' hand-off rows are planned not due
 * before their deadline (or held, with `enrichRequired`), and made due when the enrichment is stored.
 */
import { ENRICH_FACTS, type EnrichFact, type TargetConfig } from "../config/schemas";
import type { Listed } from "../config/store";
import { type HandoffPlan, HOLD_AT } from "../ledger/types";
import type { RAW_FILE_FORMATS } from "../providers/centrepoint/api/schemas";
import type { TargetPlan } from "./compose";
import { applicableFacts, type EventKeys } from "./facts";

/** The hand-off id of a source's Puller (src/pull/puller.ts). */
export const PULL_HANDOFF = "@pull";

/** A raw data file format. */
export type RawFileFormat = (typeof RAW_FILE_FORMATS)[number];

/** The Puller's job of one delivery (the PULL_HANDOFF row's `enrich` column, JSON). */
export interface PullSpec {
  /** Facts to look up: the union of what the waiting targets want. */
  facts: EnrichFact[];
  /** Epoch ms until which some target waits (HOLD_AT: one holds until enrichment succeeds); lookups are not retried past it. */
  until: number;
  /** Request the subject's raw data for the event's range in this format (a raw_processing.completed of a source with autoRequest). */
  autoRequest: RawFileFormat | null;
}

/** The pull side's part of a record's plan: extra hand-off ids and the plans of special rows. */
export interface PullPlan {
  extraTargets: string[];
  plans: Record<string, HandoffPlan>;
}

/** Plans enrichment and the automatic raw-data request of one delivery. `wanted` are the targets whose filter wants it. */
export function planPull(input: {
  targets: readonly Listed<TargetConfig>[];
  wanted: readonly string[];
  keys: EventKeys;
  receivedAt: number;
  autoRequest: RawFileFormat | null;
}): PullPlan {
  const plans: Record<string, HandoffPlan> = {};
  const union = new Set<EnrichFact>();
  let until = 0;
  const configs = new Map(input.targets.flatMap((t) => (t.valid ? [[t.id, t.config] as const] : [])));
  for (const id of input.wanted) {
    const config = configs.get(id);
    if (!config || config.enrich.length === 0) continue;
    const facts = applicableFacts(config.enrich, input.keys);
    if (facts.length === 0) continue;
    const nextAt = config.enrichRequired ? HOLD_AT : input.receivedAt + config.enrichDeadlineMs;
    const plan: TargetPlan = { facts, linkTtlHours: config.linkTtlHours };
    plans[id] = { nextAt, enrich: JSON.stringify(plan) };
    for (const f of facts) union.add(f);
    until = Math.max(until, nextAt);
  }
  const k = input.keys;
  const autoRequest =
    input.autoRequest !== null && k.kind === "raw_processing.completed" && k.studyId !== null && k.subjectId !== null ? input.autoRequest : null;
  if (union.size === 0 && autoRequest === null) return { extraTargets: [], plans };
  const spec: PullSpec = { facts: ENRICH_FACTS.filter((f) => union.has(f)), until, autoRequest };
  plans[PULL_HANDOFF] = { nextAt: input.receivedAt, enrich: JSON.stringify(spec) };
  return { extraTargets: [PULL_HANDOFF], plans };
}
