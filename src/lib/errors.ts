import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Machine-readable error codes of the external contract. */
export type ErrorCode =
  | "bad_request"
  | "invalid_document"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "payload_too_large"
  | "unsupported_media_type"
  | "source_misconfigured"
  | "source_disabled"
  | "admin_disabled"
  | "conflict"
  | "gone"
  | "rate_limited"
  | "reason_required"
  | "links_disabled"
  | "upstream_error"
  | "internal_error"
  | "audit_unavailable"
  | "reason_required";

/** Sends the contract's error body `{ error, message }`; never put secrets in `message`. */
export function errorResponse(c: Context, status: ContentfulStatusCode, error: ErrorCode, message: string, extra?: Record<string, unknown>) {
  return c.json({ error, message, ...extra }, status);
}
