import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { clearConfigCache } from "../../src/config/store";
import { uploadBody } from "../../harness/centrepoint/payloads";

export { uploadBody };

/** The dev-only HMAC secret from vitest.config.ts (the protocol reference's test vector key). */
export const TEST_HMAC_SECRET = "B3`MlG4sJR.X^-%w=oG_UrNBEpszl?";
export const ADMIN_TOKEN = "test-admin-token";
/** One of CentrePoint's published addresses. */
export const CENTREPOINT_IP = "13.82.60.74";

let counter = 0;
/** A fresh id for sources, targets and delivery ids, unique within the test run. */
export function freshId(prefix = "s"): string {
  counter++;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

/** Writes a source document straight into KV (as `wrangler kv key put` would). */
export async function putSource(id: string, doc: Record<string, unknown> = {}): Promise<void> {
  await env.CONFIG.put(`source:${id}`, JSON.stringify({ auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET" }, ...doc }));
  clearConfigCache();
}

/** Writes a target document straight into KV. */
export async function putTarget(id: string, doc: Record<string, unknown>): Promise<void> {
  await env.CONFIG.put(`target:${id}`, JSON.stringify(doc));
  clearConfigCache();
}

/** Base64 HMAC-SHA256 of `body`, as CentrePoint signs. */
export async function sign(body: string, secret = TEST_HMAC_SECRET): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return btoa(String.fromCharCode(...mac));
}

export interface PostOptions {
  body?: BodyInit;
  event?: string | null;
  deliveryId?: string | null;
  ip?: string | null;
  sign?: boolean;
  headers?: Record<string, string>;
}

/** POSTs to `/webhooks/<source>` with CentrePoint's headers; signs the body unless told not to. */
export async function postWebhook(source: string, opts: PostOptions = {}): Promise<Response> {
  const body = opts.body ?? uploadBody();
  const headers: Record<string, string> = {
    "content-type": "application/json; charset=utf-8",
    "user-agent": "ActiGraph-Hookshot/1.0 ActiGraph-Hookshot/1.0",
    "x-client-cert-used": "False",
  };
  if (opts.event !== null) headers["x-actigraph-event"] = opts.event ?? "upload";
  if (opts.deliveryId !== null) headers["x-actigraph-delivery"] = opts.deliveryId ?? crypto.randomUUID();
  if (opts.ip !== null) headers["cf-connecting-ip"] = opts.ip ?? CENTREPOINT_IP;
  if (opts.sign !== false && typeof body === "string") headers["x-actigraph-signature"] = await sign(body);
  return exports.default.fetch(`http://relay.test/webhooks/${source}`, { method: "POST", headers: { ...headers, ...opts.headers }, body });
}

/** Calls the admin API with the test token. */
export function admin(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`http://relay.test/admin${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", ...(init.headers as Record<string, string>) },
  });
}

/** The source's ledger stub. */
export function ledgerOf(source: string) {
  return env.LEDGER.get(env.LEDGER.idFromName(source));
}
