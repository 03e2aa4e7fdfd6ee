import { z } from "zod";
import { isAllowListEntry } from "../lib/ip";
import { EXPRESSION_LIMITS, expressionError } from "../lib/jsonata";
import { CENTREPOINT_ADDRESS_KEYWORDS } from "../providers/centrepoint/constants";
import { RAW_FILE_FORMATS } from "../providers/centrepoint/api/schemas";
import { RESERVED_SECRET_NAMES } from "./reserved-names";

/**
 * KV configuration documents (`source:<id>`, `target:<id>`). The same schemas validate
 * documents on write (admin API) and on read (KV), so both doors to the store agree.
 * Secrets are never part of a document: fields ending in `Env` name a Worker secret.
 */

/** Name of a Worker secret (as set with `wrangler secret put`); never one the relay itself reads (config/secrets.ts). */
export const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be the name of a Worker secret, e.g. CP_STUDY_42_SECRET")
  .refine((name) => !RESERVED_SECRET_NAMES.includes(name), {
    message: `must not be one of the relay's own names (${RESERVED_SECRET_NAMES.join(", ")}); use a secret of this document's own`,
  });

/** Ids used in KV keys, URLs and Durable Object names. */
export const idSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "must be 1-64 chars of a-z, 0-9, '-' or '_', starting with a letter or digit");

/** Whether `id` is one the API could have written: only such a document ever has Durable Objects (listings skip the rest). */
export const isValidId = (id: string): boolean => idSchema.safeParse(id).success;

const cidrOrKeyword = z
  .string()
  .max(64)
  .refine((entry) => isAllowListEntry(entry, CENTREPOINT_ADDRESS_KEYWORDS), {
    message: 'must be an IPv4/IPv6 address or CIDR, "actigraph" (the published CentrePoint list) or "*"',
  });

/**
 * How CentrePoint authenticates to us (one of the portal's Authentication Types). The optional
 * `previous*Env` names the secret being rotated out: both are accepted until it is removed.
 */
export const sourceAuthSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("hmac"), secretEnv: envName, previousSecretEnv: envName.optional() }),
  z.strictObject({ type: z.literal("basic"), username: z.string().min(1).max(256), passwordEnv: envName, previousPasswordEnv: envName.optional() }),
  z.strictObject({ type: z.literal("bearer"), tokenEnv: envName, previousTokenEnv: envName.optional() }),
  z.strictObject({ type: z.literal("none") }),
]);

/**
 * A base URL of CentrePoint's V3 API or auth server: http(s), no credentials, query or fragment.
 * Whether plain http is allowed (loopback with ALLOW_HTTP_TARGETS only) is the outbound URL policy
 * (`checkTargetUrl`), applied on save and again before every use, because it depends on the Worker.
 */
const apiBaseUrl = z
  .url({ protocol: /^https?$/, error: "must be an https:// URL" })
  .max(2048)
  .refine((url) => !/[?#]/.test(url), { message: "must be a base URL without a query or fragment" });

/** A CentrePoint id as the V3 API takes it in a path (studyId, webhookId). */
const centrepointId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** How often and how far back a source is reconciled against CentrePoint's delivery history (docs/reconciliation.md). */
export const reconcileScheduleSchema = z.strictObject({
  /** Minutes between scheduled runs: 0 (off) or 5 to 10,080; runs start on the 5-minute Cron Trigger's ticks. */
  everyMinutes: z
    .number()
    .int()
    .min(0)
    .max(10_080)
    .refine((n) => n === 0 || n >= 5, { message: "must be 0 (off) or at least 5 (the Cron Trigger runs every 5 minutes)" })
    .default(60),
  /** History items created longer ago than this are read but never backfilled. */
  lookbackHours: z
    .number()
    .int()
    .min(1)
    .max(90 * 24)
    .default(168),
});
export type ReconcileSchedule = z.infer<typeof reconcileScheduleSchema>;

/** The study's CentrePoint V3 API client: reconciliation against the delivery history, and the registration check. */
export const centrepointApiSchema = z.strictObject({
  studyId: centrepointId,
  webhookId: centrepointId,
  clientIdEnv: envName,
  clientSecretEnv: envName,
  apiUrl: apiBaseUrl.default("https://api.actigraphcorp.com"),
  authUrl: apiBaseUrl.default("https://auth.actigraphcorp.com"),
  reconcile: reconcileScheduleSchema.default(reconcileScheduleSchema.parse({})),
  /** On `raw_processing.completed`, request that subject's raw data for the event's time range in this format (docs/pull.md). */
  autoRequest: z.strictObject({ fileFormat: z.enum(RAW_FILE_FORMATS) }).optional(),
});
export type CentrePointApiConfig = z.infer<typeof centrepointApiSchema>;

/**
 * How long a source's ledger keeps what it recorded (default: everything, forever). Only records
 * already archived to R2 are pruned: `bodyDays` after receipt the body and the envelope go (their
 * digests stay, so the hash chain still verifies), `recordDays` after receipt the whole record
 * (it lives on in the archive). Deduplication only knows the records kept, so `recordDays` is at
 * least 7 (CentrePoint retries for 48 h; a resend from the portal may come later).
 */
export const retentionSchema = z
  .strictObject({
    bodyDays: z.number().int().min(1).max(36_500).optional(),
    recordDays: z.number().int().min(7).max(36_500).optional(),
  })
  .refine((r) => r.bodyDays === undefined || r.recordDays === undefined || r.recordDays >= r.bodyDays, {
    path: ["recordDays"],
    message: "must be at least bodyDays (a record goes with its body)",
  });
export type Retention = z.infer<typeof retentionSchema>;

/** A configured sender: one CentrePoint study webhook. */
export const sourceSchema = z.strictObject({
  provider: z.literal("centrepoint").default("centrepoint"),
  description: z.string().max(500).optional(),
  retention: retentionSchema.optional(),
  auth: sourceAuthSchema,
  allowedIps: z.array(cidrOrKeyword).min(1).max(256).default(["actigraph"]),
  enabled: z.boolean().default(true),
  centrepoint: centrepointApiSchema.optional(),
});
export type SourceConfig = z.infer<typeof sourceSchema>;

/** How we authenticate to a downstream target. */
export const targetAuthSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("bearer"), tokenEnv: envName }),
  z.strictObject({ type: z.literal("basic"), username: z.string().min(1).max(256), passwordEnv: envName }),
  z.strictObject({
    type: z.literal("header"),
    name: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "must be an HTTP header name"),
    valueEnv: envName,
  }),
]);

/** Days a target's delivered dispatches are kept when its document does not say (`retentionDays`). */
export const DEFAULT_RETENTION_DAYS = 30;

/**
 * Retry policy of a target; times in milliseconds. Delays are capped exponential with full
 * jitter; an event is dead for the target once `windowMs` has passed since it was first
 * planned (or after `maxAttempts`, when set). The default window is 72 h, longer than
 * CentrePoint's own 24 h + 24 h retries.
 */
export const retrySchema = z.strictObject({
  baseDelayMs: z.number().int().min(100).max(3_600_000).default(30_000),
  maxDelayMs: z
    .number()
    .int()
    .min(1_000)
    .max(86_400_000)
    .default(4 * 3_600_000),
  windowMs: z
    .number()
    .int()
    .min(1_000)
    .max(30 * 86_400_000)
    .default(72 * 3_600_000),
  maxAttempts: z.number().int().min(1).max(10_000).optional(),
  retryAfterCapMs: z.number().int().min(1_000).max(86_400_000).default(3_600_000),
});
export type RetryPolicy = z.infer<typeof retrySchema>;

/**
 * Circuit breaker of a target: open after `threshold` consecutive failures, probe once after
 * `cooldownMs`, doubling the cool-down after each failed probe up to `maxCooldownMs`.
 */
export const breakerSchema = z.strictObject({
  threshold: z.number().int().min(1).max(1_000).default(5),
  cooldownMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
  maxCooldownMs: z.number().int().min(1_000).max(86_400_000).default(3_600_000),
});
export type BreakerPolicy = z.infer<typeof breakerSchema>;

/** Facts a target's events can be enriched with, looked up in CentrePoint's V3 API (docs/pull.md). */
export const ENRICH_FACTS = ["subject", "upload", "datafiles"] as const;
export type EnrichFact = (typeof ENRICH_FACTS)[number];

/** Default wait for enrichment before an event goes out with `enrichment.status: "failed"` (10 minutes). */
export const DEFAULT_ENRICH_DEADLINE_MS = 10 * 60_000;

/** Glob over normalized kinds: `*`, `upload.*`, `raw_processing.completed`. */
const kindGlob = z.string().regex(/^(\*|[a-z0-9_]+(\.(\*|[a-z0-9_]+))?)$/, "must be a kind or glob such as upload.* or *");

/** A JSONata expression (docs/transforms.md), compiled on save: a syntax error is a field error with its position. */
const jsonataExpression = z
  .string()
  .min(1)
  .max(EXPRESSION_LIMITS.chars)
  .superRefine((text, ctx) => {
    const problem = expressionError(text);
    if (problem !== null) ctx.addIssue({ code: "custom", message: `is not a valid JSONata expression: ${problem}` });
  });

/** Content types a transformed body may have. */
export const TRANSFORM_CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain"] as const;

/** Headers the relay sets itself (content type, signature, delivery id, transport): a transform cannot set them. */
const RELAY_HEADERS =
  /^(content-type|content-length|host|transfer-encoding|connection|user-agent|webhook-id|webhook-timestamp|webhook-signature|x-actigraph-signature)$/i;

/** `$secret("NAME")` calls with a literal name in an expression. */
const SECRET_CALL = /\$secret\(\s*(["'])([^"']*)\1\s*\)/g;

/** The secret names an expression calls `$secret` with (literal names only; others are checked when evaluated). */
export function secretCalls(text: string): string[] {
  return [...text.matchAll(SECRET_CALL)].map((m) => m[2] ?? "");
}

/**
 * How a target reshapes its request (docs/transforms.md): a JSONata body and headers over
 * `{event, delivery, target}`, sent with `contentType` and `method`. `$secret("NAME")` reads a
 * Worker secret named in `secrets` (target-role, like `auth`'s).
 */
export const transformSchema = z
  .strictObject({
    body: jsonataExpression,
    contentType: z.enum(TRANSFORM_CONTENT_TYPES).default("application/json"),
    method: z.enum(["POST", "PUT", "PATCH"]).default("POST"),
    headers: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z0-9-]{1,64}$/, "must be an HTTP header name")
          .refine((name) => !RELAY_HEADERS.test(name), { message: "is set by the relay (contentType, signing, webhook-id); a transform cannot set it" }),
        jsonataExpression,
      )
      .refine((h) => Object.keys(h).length <= 32, { message: "at most 32 headers" })
      .optional(),
    secrets: z.array(envName).max(16).default([]),
  })
  .superRefine((t, ctx) => {
    const expressions: [string[], string][] = [[["body"], t.body], ...Object.entries(t.headers ?? {}).map(([k, v]): [string[], string] => [["headers", k], v])];
    for (const [path, text] of expressions)
      for (const name of secretCalls(text))
        if (!t.secrets.includes(name)) ctx.addIssue({ code: "custom", path, message: `calls $secret("${name}"), which is not in transform.secrets` });
  });
export type TransformConfig = z.infer<typeof transformSchema>;

/** A downstream endpoint (EDC, warehouse, notifier). */
export const targetSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).max(2048),
    description: z.string().max(500).optional(),
    events: z.array(kindGlob).min(1).max(64).default(["*"]),
    sources: z
      .array(z.union([idSchema, z.literal("*")]))
      .min(1)
      .max(256)
      .default(["*"]),
    auth: targetAuthSchema.optional(),
    signing: z.strictObject({ secretEnv: envName }).optional(),
    format: z.enum(["cloudevents", "raw"]).default("cloudevents"),
    /** format raw only: sign the body as CentrePoint does (`X-ActiGraph-Signature`), with a key of this target's own. */
    centrepointSigning: z.strictObject({ secretEnv: envName }).optional(),
    timeoutMs: z.number().int().min(1_000).max(120_000).default(15_000),
    /** Attempts in flight at once. Cloudflare opens 6 connections per invocation and queues the rest. */
    concurrency: z.number().int().min(1).max(50).default(6),
    retry: retrySchema.default(retrySchema.parse({})),
    breaker: breakerSchema.default(breakerSchema.parse({})),
    ordered: z.boolean().default(false),
    /** Days a delivered event's dispatch and its attempts are kept in the outbox; dead, held and not_wanted ones are kept until replayed or resolved. */
    retentionDays: z.number().int().min(1).max(3_650).default(DEFAULT_RETENTION_DAYS),
    enabled: z.boolean().default(true),
    /** Facts looked up once per event and added under `data.enrichment` (docs/pull.md); none by default. */
    enrich: z
      .array(z.enum(ENRICH_FACTS))
      .max(ENRICH_FACTS.length)
      .default([])
      .transform((facts) => ENRICH_FACTS.filter((f) => facts.includes(f))),
    /** true: events wait (held, never dropped) until enrichment succeeds or an operator releases them. */
    enrichRequired: z.boolean().default(false),
    /** How long an event waits for its enrichment before it goes out without it (`status: "failed"`), ms. */
    enrichDeadlineMs: z
      .number()
      .int()
      .min(1_000)
      .max(24 * 3_600_000)
      .default(DEFAULT_ENRICH_DEADLINE_MS),
    /** Lifetime of the relay links to data files this target receives, hours (never past CentrePoint's own file expiry). */
    linkTtlHours: z
      .number()
      .int()
      .min(1)
      .max(90 * 24)
      .default(168),
    /** Reshapes the request (JSONata body, headers, content type, method) for a system's own API (docs/transforms.md). */
    transform: transformSchema.optional(),
    /** JSONata over the transform's input: false sends nothing (the dispatch is not_wanted); in addition to events and sources. */
    filter: jsonataExpression.optional(),
    /** Sends started per minute at most, evenly spaced (one every 60 s / perMinute, no burst), retries and replays included. */
    rateLimit: z.strictObject({ perMinute: z.number().int().min(1).max(600) }).optional(),
    /** CloudEvents batch mode: up to maxEvents events per request, sent once that many are due or the oldest has waited maxWaitMs. */
    batch: z
      .strictObject({
        maxEvents: z.number().int().min(1).max(100),
        maxWaitMs: z.number().int().min(0).max(60_000),
      })
      .optional(),
  })
  .refine((t) => t.centrepointSigning === undefined || t.format === "raw", {
    path: ["centrepointSigning"],
    message: 'applies to format "raw" only (cloudevents targets use signing)',
  })
  .refine((t) => t.batch === undefined || t.format === "cloudevents", {
    path: ["batch"],
    message: 'applies to format "cloudevents" only (a batch is an array of envelopes)',
  });
export type TargetConfig = z.infer<typeof targetSchema>;

/** Field-level problem: `{ path: "auth.secretEnv", message }`. */
export const fieldErrorSchema = z.object({ path: z.string(), message: z.string() });
export type FieldError = z.infer<typeof fieldErrorSchema>;

/** Turns a zod error into field-level messages for API responses and logs. */
export function toFieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((i) => ({ path: i.path.join(".") || "(document)", message: i.message }));
}
