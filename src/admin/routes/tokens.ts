import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../env";
import { errorResponse } from "../../lib/errors";
import { REASON_HEADER } from "../../audit/audit";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { createApiToken, listApiTokens, revokeApiToken } from "../service/tokens";
import { jsonBody, valid } from "../validation";
import { createdTokenSchema, createTokenBody, listedTokenSchema, tokenIdParam } from "./tokens.schemas";

/**
 * `/admin/tokens`: named API tokens for machines (docs/identity.md). A token is shown once, at
 * creation; the sign-in guard keeps only its SHA-256 (admin/sign-in-guard.ts). The caller it
 * signs in is `token:<name>` with the token's role. Revoking needs a reason (`X-Audit-Reason`).
 */
export const tokens = new Hono<AppEnv>();

tokens.post(
  "/",
  requireRole("admin"),
  describeAdmin({
    tag: "tokens",
    summary: "Create a named API token (admin); the token is in this answer only",
    responses: {
      201: { schema: createdTokenSchema, description: "created; keep the token now, it is never shown again" },
      400: { schema: errorBodySchema, description: "invalid request" },
      409: { schema: errorBodySchema, description: "a token of that name exists or existed" },
    },
  }),
  jsonBody(),
  valid("json", createTokenBody),
  async (c) => {
    const created = await createApiToken(c, c.req.valid("json"));
    if (!created.ok) return errorResponse(c, 409, "conflict", created.error.message);
    c.header("Cache-Control", "no-store");
    return c.json(created.value, 201);
  },
);

tokens.get(
  "/",
  requireRole("admin"),
  describeAdmin({
    tag: "tokens",
    summary: "List the named API tokens not revoked (admin): name, role, created by and at, last used, expiry; never the token",
    responses: { 200: { schema: z.object({ items: z.array(listedTokenSchema) }), description: "the tokens, newest first" } },
  }),
  async (c) => c.json({ items: await listApiTokens(c.env) }),
);

tokens.delete(
  "/:id",
  requireRole("admin"),
  describeAdmin({
    tag: "tokens",
    summary: "Revoke a named API token at once (admin); needs a reason in the X-Audit-Reason header",
    responses: {
      204: { description: "revoked" },
      400: { schema: errorBodySchema, description: "no reason given (reason_required)" },
      404: { schema: errorBodySchema, description: "no such token" },
    },
  }),
  valid("param", tokenIdParam),
  async (c) => {
    const revoked = await revokeApiToken(c, c.req.valid("param").id, c.req.header(REASON_HEADER));
    if (!revoked.ok) return errorResponse(c, 404, "not_found", revoked.error.message);
    return c.body(null, 204);
  },
);
