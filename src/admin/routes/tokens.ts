import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../env";
import { sha256Hex } from "../../lib/crypto";
import { errorResponse } from "../../lib/errors";
import { audit, REASON_HEADER } from "../../audit/audit";
import { requireRole } from "../authz";
import { describeAdmin, errorBodySchema } from "../openapi";
import { type ApiTokenInfo, signInGuard } from "../sign-in-guard";
import { jsonBody, valid } from "../validation";
import { createdTokenSchema, createTokenBody, listedTokenSchema, tokenIdParam } from "./tokens.schemas";

/**
 * `/admin/tokens`: named API tokens for machines (docs/identity.md). A token is shown once, at
 * creation; the sign-in guard keeps only its SHA-256 (admin/sign-in-guard.ts). The caller it
 * signs in is `token:<name>` with the token's role. Revoking needs a reason (`X-Audit-Reason`).
 */
export const tokens = new Hono<AppEnv>();

const DAY_MS = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const listed = (t: ApiTokenInfo, now: number) => ({
  id: t.id,
  name: t.name,
  role: t.role,
  createdBy: t.createdBy,
  createdAt: iso(t.createdAt),
  expiresAt: iso(t.expiresAt),
  expired: t.expiresAt <= now,
  lastUsedAt: t.lastUsedAt === null ? null : iso(t.lastUsedAt),
});

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
    const { name, role, expiresInDays } = c.req.valid("json");
    const now = Date.now();
    const id = `tok_${randomPart(12)}`;
    const token = `cpr_${randomPart(32)}`;
    const expiresAt = now + expiresInDays * DAY_MS;
    const conflict = () => errorResponse(c, 409, "conflict", `A token named "${name}" exists or existed; names are never reused. Pick another.`);
    // Checked before the entry, so a refused name leaves no token.create for a token never made (the create below still refuses a name taken meanwhile).
    if (await signInGuard(c.env).tokenNameTaken(name)) return conflict();
    await audit(c, { action: "token.create", object: { token: id, name }, after: { name, role, expiresAt: iso(expiresAt) } });
    const created = await signInGuard(c.env).createToken({ id, name, role, hash: sha256Hex(token), createdBy: c.var.actor.id, createdAt: now, expiresAt });
    if (created === "conflict") return conflict();
    c.header("Cache-Control", "no-store");
    return c.json({ id, name, role, token, expiresAt: iso(expiresAt) }, 201);
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
  async (c) => {
    const now = Date.now();
    return c.json({ items: (await signInGuard(c.env).listTokens()).map((t) => listed(t, now)) });
  },
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
    const { id } = c.req.valid("param");
    const guard = signInGuard(c.env);
    const existing = await guard.getToken(id);
    if (!existing) return errorResponse(c, 404, "not_found", `No token "${id}".`);
    await audit(c, {
      action: "token.revoke",
      object: { token: id, name: existing.name },
      reason: c.req.header(REASON_HEADER),
      reasonRequired: "Revoking a token needs a reason",
      before: listed(existing, Date.now()),
    });
    await guard.revokeToken(id);
    return c.body(null, 204);
  },
);

function randomPart(bytes: number): string {
  let s = "";
  for (const b of crypto.getRandomValues(new Uint8Array(bytes))) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
