import type { Context } from "hono";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import type { Refusal } from "../service/reconcile";

/** Answers a refusal of the reconciliation and pull services. */
export function refuse(c: Context<AppEnv>, r: Refusal): Response {
  return errorResponse(c, r.status, r.code, r.message, r.upstream ? { upstream: r.upstream } : undefined);
}
