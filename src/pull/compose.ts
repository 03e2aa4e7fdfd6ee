/**
 * The envelope a target with `enrich` receives: the recorded envelope (never changed in the ledger)
 * with `data.enrichment` added, holding only the facts that target asked for (docs/pull.md,
 * "Fields added to events"). Pure: the clock, the link keys and the public URL are passed in.
 */
import type { EnrichFact } from "../config/schemas";
import { type DataFileFact, type StoredEnrichment, type SubjectFact, type UploadFact } from "./facts";
import { buildLink, linkExpiry } from "./links";

/** What a target's hand-off row keeps about its enrichment (the row's `enrich` column, JSON). */
export interface TargetPlan {
  /** The target's facts that apply to this event. */
  facts: EnrichFact[];
  linkTtlHours: number;
}

/** `data.enrichment` of an event. */
export interface Enrichment {
  status: "complete" | "partial" | "failed";
  /** Why a fact is missing (or a link could not be made), one sentence each; empty when complete. */
  reasons: string[];
  subject?: SubjectFact;
  upload?: UploadFact;
  dataFiles?: (DataFileFact & { link: string | null; linkExpiresAt: string | null })[];
}

/** What composing needs besides the plan and the stored enrichment. */
export interface ComposeContext {
  source: string;
  target: string;
  now: number;
  /** RELAY_PUBLIC_URL ("" = relative links). */
  publicUrl: string;
  /** The current link key, or null when FILE_LINK_SECRET is not set. Secret material. */
  linkKey: string | null;
}

/** `data.enrichment` for one target from what was stored (null: the lookup had not stored anything yet). */
export function enrichmentFor(plan: TargetPlan, stored: StoredEnrichment | null, ctx: ComposeContext): Enrichment {
  const out: Enrichment = { status: "failed", reasons: [] };
  let found = 0;
  for (const fact of plan.facts) {
    const error = stored?.errors[fact];
    if (fact === "subject" && stored?.found.subject) out.subject = stored.found.subject;
    else if (fact === "upload" && stored?.found.upload) out.upload = stored.found.upload;
    else if (fact === "datafiles" && stored?.found.datafiles) {
      out.dataFiles = stored.found.datafiles.map((f) => withLink(f, plan, ctx));
      if (ctx.linkKey === null) out.reasons.push("datafiles: no relay links (FILE_LINK_SECRET is not set); ask CentrePoint for the files");
    } else {
      out.reasons.push(
        `${fact}: ${error ?? (stored ? "the lookup had not finished when the event was sent" : "the lookup had not started when the event was sent")}`,
      );
      continue;
    }
    found++;
  }
  out.status = found === plan.facts.length && out.reasons.length === 0 ? "complete" : found > 0 ? "partial" : "failed";
  return out;
}

/** A data file with its relay link (null when links are off). */
function withLink(f: DataFileFact, plan: TargetPlan, ctx: ComposeContext): DataFileFact & { link: string | null; linkExpiresAt: string | null } {
  if (ctx.linkKey === null) return { ...f, link: null, linkExpiresAt: null };
  const exp = linkExpiry(ctx.now, plan.linkTtlHours, f.expiresAt);
  return {
    ...f,
    link: buildLink(ctx.publicUrl, ctx.linkKey, { source: ctx.source, fileId: f.id, target: ctx.target, exp }),
    linkExpiresAt: new Date(exp * 1000).toISOString(),
  };
}

/** The serialized envelope with `data.enrichment` set (attributes and `data`'s other fields unchanged, `data` last). */
export function withEnrichment(envelope: string, enrichment: Enrichment): string {
  const { data, ...attributes } = JSON.parse(envelope) as { data?: unknown } & Record<string, unknown>;
  const base = typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
  return JSON.stringify({ ...attributes, data: { ...base, enrichment } });
}
