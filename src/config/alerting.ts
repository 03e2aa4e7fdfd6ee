import { z } from "zod";
import { err, ok, type Result } from "../lib/result";
import { type FieldError, idSchema, toFieldErrors } from "./schemas";

/**
 * The KV document `alerting` (docs/alerting.md): which conditions open issues, their severities and
 * thresholds. One document for the relay; absent means every default. Validated on write (admin
 * API) and on read, as the other documents are; an invalid stored document is reported and the
 * defaults apply until it is fixed (an alert that stops because of a typo would be worse).
 */

/** The KV key of the document. */
export const ALERTING_KEY = "alerting";

/** Every condition an issue can be about, and its default severity. */
export const CONDITION_SEVERITY = {
  dead_letters: "critical",
  breaker_open: "warning",
  backlog_age: "warning",
  held: "warning",
  refused_deliveries: "critical",
  source_silent: "warning",
  registration_mismatch: "critical",
  reconcile_failed: "warning",
  reconcile_backfilled: "warning",
  centrepoint_auth_failed: "critical",
  enrichment_failed: "warning",
  raw_request_failed: "warning",
  integrity_failed: "critical",
  archive_halted: "critical",
} as const;

export type Condition = keyof typeof CONDITION_SEVERITY;
export const CONDITIONS = Object.keys(CONDITION_SEVERITY) as Condition[];

export const SEVERITIES = ["critical", "warning", "info"] as const;
export type Severity = (typeof SEVERITIES)[number];

const minutes = (max: number, fallback: number) => z.number().int().min(1).max(max).default(fallback);

/** One condition's switch and severity. */
const conditionSettingSchema = z.strictObject({
  enabled: z.boolean().default(true),
  severity: z.enum(SEVERITIES).optional(),
});

/** The document. Times in minutes (silentHours in hours). */
export const alertingSchema = z.strictObject({
  /** breaker_open: a target's breaker open (or probing) longer than this. */
  breakerOpenMinutes: minutes(1_440, 10),
  /** backlog_age: a target's oldest pending dispatch older than this. */
  oldestPendingMinutes: minutes(10_080, 15),
  /** held: a target holding dispatches (410, invalid or disabled) longer than this. */
  heldMinutes: minutes(10_080, 60),
  /** refused_deliveries: at least this many 401/403 refusals of one source within 10 minutes. */
  refusedPerTenMinutes: z.number().int().min(1).max(100_000).default(5),
  /** source_silent, per source (off for a source not named): no delivery for this many hours. */
  silentHours: z.record(idSchema, z.number().int().min(1).max(2_160)).default({}),
  /** Per condition: `enabled` (default true) and a `severity` other than the default. */
  conditions: z.partialRecord(z.enum(CONDITIONS as [Condition, ...Condition[]]), conditionSettingSchema).default({}),
});

export type AlertingConfig = z.infer<typeof alertingSchema>;

/** Every default (the document when it is absent). */
export const DEFAULT_ALERTING: AlertingConfig = alertingSchema.parse({});

/** Parses a submitted or stored document. */
export function parseAlerting(raw: unknown): Result<AlertingConfig, FieldError[]> {
  const parsed = alertingSchema.safeParse(raw);
  return parsed.success ? ok(parsed.data) : err(toFieldErrors(parsed.error));
}

/** What the KV document turned out to be; `config` is what applies (the defaults when missing or invalid). */
export type LoadedAlerting = { state: "missing" | "valid"; config: AlertingConfig } | { state: "invalid"; errors: FieldError[]; config: AlertingConfig };

/** Reads the document from KV (uncached: read once per evaluation, and by the admin API). */
export async function loadAlerting(kv: KVNamespace): Promise<LoadedAlerting> {
  const text = await kv.get(ALERTING_KEY, "text");
  if (text === null) return { state: "missing", config: DEFAULT_ALERTING };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { state: "invalid", errors: [{ path: "(document)", message: "is not valid JSON" }], config: DEFAULT_ALERTING };
  }
  const r = parseAlerting(raw);
  return r.ok ? { state: "valid", config: r.value } : { state: "invalid", errors: r.error, config: DEFAULT_ALERTING };
}

/** Stores a validated document. */
export async function saveAlerting(kv: KVNamespace, config: AlertingConfig): Promise<void> {
  await kv.put(ALERTING_KEY, JSON.stringify(config));
}

/** Whether a condition opens issues, and at which severity. */
export function conditionSetting(config: AlertingConfig, condition: Condition): { enabled: boolean; severity: Severity } {
  const s = config.conditions[condition];
  return { enabled: s?.enabled ?? true, severity: s?.severity ?? CONDITION_SEVERITY[condition] };
}
