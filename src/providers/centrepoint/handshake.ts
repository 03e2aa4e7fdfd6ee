import { err, ok, type Result } from "../../lib/result";
import { VALIDATION_EVENT } from "./constants";

/** A validation handshake found in a request. */
export interface Handshake {
  code: string;
  webhookId: string | null;
}

/** Longest validation code we echo; CentrePoint's are 36-character GUIDs. */
export const MAX_VALIDATION_CODE_LENGTH = 128;

/**
 * Detects CentrePoint's validation handshake: `X-ActiGraph-Event: validation` (any casing), or,
 * with no event header at all, a body that is exactly the documented handshake shape
 * (`{"WebhookId": ..., "ValidationCode": ...}` and nothing else). Any other request is a
 * delivery, whatever keys its body has. The code comes from `X-ActiGraph-Hook-Secret`, else from
 * the body. Returns null when the request is not a handshake, and an error when it is one whose
 * code must not be echoed (missing, too long, or not visible ASCII: CR/LF and other control
 * characters would allow header injection).
 */
export function detectHandshake(event: string | undefined, hookSecret: string | undefined, body: unknown): Result<Handshake, string> | null {
  const bodyObj = body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
  const eventName = event?.trim().toLowerCase() ?? "";
  const isHandshake = eventName === VALIDATION_EVENT || (eventName === "" && bodyObj !== null && isHandshakeBody(bodyObj));
  if (!isHandshake) return null;
  const bodyCode = bodyObj?.ValidationCode;
  const code = hookSecret ?? (typeof bodyCode === "string" ? bodyCode : undefined);
  if (code === undefined || code === "") return err("the validation code is missing");
  if (code.length > MAX_VALIDATION_CODE_LENGTH) return err(`the validation code is longer than ${MAX_VALIDATION_CODE_LENGTH} characters`);
  if (!/^[\x21-\x7e]+$/.test(code)) return err("the validation code contains characters that cannot be echoed in a header");
  const webhookId = bodyObj && (typeof bodyObj.WebhookId === "string" || typeof bodyObj.WebhookId === "number") ? String(bodyObj.WebhookId) : null;
  return ok({ code, webhookId });
}

/** The documented handshake body: exactly the keys `WebhookId` and `ValidationCode`, the code a non-empty string. */
function isHandshakeBody(body: Record<string, unknown>): boolean {
  const keys = Object.keys(body);
  return keys.length === 2 && "WebhookId" in body && typeof body.ValidationCode === "string" && body.ValidationCode !== "";
}
