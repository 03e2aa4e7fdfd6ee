import { log } from "../lib/log";

/** Default body limit when MAX_BODY_BYTES is unset or invalid: 256 KiB (CentrePoint sends a few KiB). */
export const DEFAULT_MAX_BODY_BYTES = 262_144;
/** Largest body limit MAX_BODY_BYTES may set: a stored row (body, headers, envelope) must stay under SQLite's 2 MB. */
export const MAX_BODY_BYTES_CEILING = 1_048_576;
/** Bytes a ledger or outbox row may take in all (SQLite's row limit is 2,000,000); the envelope gets what body and headers leave. */
export const ROW_BUDGET_BYTES = 1_900_000;

let warnedAboutLimit = false;

/** MAX_BODY_BYTES as a limit: the default when unset or invalid, never above the ceiling (logged once per isolate). */
export function bodyLimit(value: string | undefined): number {
  const n = Number(value);
  if (!(n > 0)) return DEFAULT_MAX_BODY_BYTES;
  if (n > MAX_BODY_BYTES_CEILING) {
    if (!warnedAboutLimit) {
      warnedAboutLimit = true;
      log("error", "MAX_BODY_BYTES is above the ceiling; using the ceiling", { MAX_BODY_BYTES: value, ceiling: MAX_BODY_BYTES_CEILING });
    }
    return MAX_BODY_BYTES_CEILING;
  }
  return Math.floor(n);
}
