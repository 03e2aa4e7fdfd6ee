/** Every fact about CentrePoint's wire format lives here, once. */

/** Header names as CentrePoint sends them; HTTP header lookup is case-insensitive. */
export const HEADER = {
  event: "x-actigraph-event",
  delivery: "x-actigraph-delivery",
  /** CentrePoint's webhook *registration* id (numeric, e.g. 74), not to be confused with the outbound Standard Webhooks `webhook-id`. */
  registrationId: "x-actigraph-webhook-id",
  signature: "x-actigraph-signature",
  hookSecret: "x-actigraph-hook-secret",
  clientCertUsed: "x-client-cert-used",
} as const;

/** The name of the handshake event in `X-ActiGraph-Event`. */
export const VALIDATION_EVENT = "validation";

/** Event names CentrePoint sends in `X-ActiGraph-Event` (besides `validation`). */
export const CENTREPOINT_EVENTS = [
  "upload",
  "raw_processing_complete",
  "data_retrieval_complete",
  "daily_statistics_complete",
  "cp2_daily_statistics_complete",
] as const;
export type CentrePointEvent = (typeof CENTREPOINT_EVENTS)[number];

/** Normalized kinds (the suffix of the CloudEvents `type`, and what target filters match). */
export const EVENT_KINDS = [
  "upload.started",
  "upload.completed",
  "upload.error",
  "raw_processing.completed",
  "raw_processing.error",
  "data_retrieval.completed",
  "data_retrieval.error",
  "daily_statistics.completed",
  "cp2_daily_statistics.completed",
  "unknown",
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** The kinds each wire event normalizes to (besides `unknown`, for a body it cannot map): what a target filter needs the registration to subscribe to. */
export const KINDS_OF_EVENT: Readonly<Record<CentrePointEvent, readonly EventKind[]>> = {
  upload: ["upload.started", "upload.completed", "upload.error"],
  raw_processing_complete: ["raw_processing.completed", "raw_processing.error"],
  data_retrieval_complete: ["data_retrieval.completed", "data_retrieval.error"],
  daily_statistics_complete: ["daily_statistics.completed"],
  cp2_daily_statistics_complete: ["cp2_daily_statistics.completed"],
};

/** How a delivery reached the relay: pushed by CentrePoint, or backfilled from CentrePoint's delivery history (src/reconcile/). */
export const PROVENANCES = ["webhook", "centrepoint-history"] as const;
export type DeliveryProvenance = (typeof PROVENANCES)[number];

/** Prefix of the CloudEvents `type`: `com.actigraph.centrepoint.<kind>`. */
export const CLOUDEVENT_TYPE_PREFIX = "com.actigraph.centrepoint.";

/**
 * CentrePoint's published source addresses ("Open Firewall Access", unchanged since 2019-12-12).
 * The `actigraph` entry of a source's `allowedIps` expands to this list.
 */
export const CENTREPOINT_IPS = [
  "13.82.60.74",
  "40.114.106.25",
  "40.114.109.196",
  "40.87.40.14",
  "40.87.44.79",
  "40.87.47.202",
  "40.87.41.144",
  "40.87.47.137",
  "13.68.136.18",
] as const;

/** The allow-list keywords of a CentrePoint source: `actigraph` is the published list. */
export const CENTREPOINT_ADDRESS_KEYWORDS = { actigraph: CENTREPOINT_IPS } as const;

/** The User-Agent token CentrePoint sends (sometimes repeated); matched as a substring. */
export const USER_AGENT_TOKEN = "ActiGraph-Hookshot/";
