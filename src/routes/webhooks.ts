import { type Context, Hono } from "hono";
import type { AppEnv } from "../env";
import { errorResponse } from "../lib/errors";
import { reportRefusal } from "../alerts/report";
import { log } from "../lib/log";
import { HEADER } from "../providers/centrepoint/constants";
import {
  type Arrival,
  allowAddress,
  buildRecord,
  checkCredentials,
  handshakeOf,
  loadSource,
  readBody,
  type Refusal,
  requireAuthenticated,
} from "./ingress/stages";

/** `POST /webhooks/:source`: CentrePoint ingress, the stages of routes/ingress/stages.ts in order. */
export const webhooks = new Hono<AppEnv>();

webhooks.post("/:source", async (c) => {
  const a: Arrival = { sourceId: c.req.param("source"), ip: c.req.header("cf-connecting-ip") ?? null, receivedAt: Date.now() };
  const refuse = (r: Refusal) => answerRefusal(c, a, r);

  const source = await loadSource(c, a);
  if (!source.ok) return refuse(source.error);
  const allowed = allowAddress(source.value, a);
  if (!allowed.ok) return refuse(allowed.error);
  const body = await readBody(c);
  if (!body.ok) return refuse(body.error);
  const auth = await checkCredentials(c, source.value, a, body.value);

  const ledger = c.env.LEDGER.get(c.env.LEDGER.idFromName(a.sourceId));
  const handshake = handshakeOf(c, source.value, a, body.value, auth);
  if (handshake) {
    // A handshake never records a delivery and never reaches a target: it goes to the audit log only.
    await ledger.recordHandshake(handshake.audit);
    if (handshake.kind === "refuse") return refuse(handshake.refusal);
    log("info", "handshake answered", {
      requestId: c.var.requestId,
      source: a.sourceId,
      authenticated: handshake.audit.authenticated,
      ms: Date.now() - a.receivedAt,
    });
    c.header(HEADER.hookSecret, handshake.handshake.code);
    return c.json({ status: "validated" });
  }
  const authenticated = requireAuthenticated(auth);
  if (!authenticated.ok) return refuse(authenticated.error);

  const record = await buildRecord(c, source.value, a, body.value);
  const result = await ledger.record(record);
  log("info", "webhook accepted", {
    requestId: c.var.requestId,
    source: a.sourceId,
    deliveryId: record.deliveryId,
    kind: record.kind,
    outcome: result.status,
    targets: record.targets.length + (record.unfilteredTargets?.length ?? 0),
    ms: Date.now() - a.receivedAt,
  });
  return c.json({ status: result.status, deliveryId: record.deliveryId, kind: record.kind });
});

/** Logs a refusal, counts it in the source's ledger off the response path when it is counted, and answers it. */
function answerRefusal(c: Context<AppEnv>, a: Arrival, r: Refusal): Response {
  log("info", "webhook rejected", {
    requestId: c.var.requestId,
    source: a.sourceId,
    status: r.status,
    reason: r.reason,
    ip: a.ip,
    ms: Date.now() - a.receivedAt,
  });
  if (r.counted) {
    c.executionCtx.waitUntil(
      c.env.LEDGER.get(c.env.LEDGER.idFromName(a.sourceId))
        .countRejection(r.reason)
        .catch(() => undefined),
    );
    // refused_deliveries (docs/alerting.md): a rotated secret or a CentrePoint address change.
    if (r.status === 401 || r.status === 403) c.executionCtx.waitUntil(reportRefusal(c.env, a.sourceId));
  }
  return errorResponse(c, r.status, r.code, r.message);
}
