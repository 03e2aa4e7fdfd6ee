import type { Context } from "hono";
import { audit } from "../../audit/audit";
import type { AppEnv, Bindings } from "../../env";
import type { Role } from "../../lib/actor";
import { sha256Hex } from "../../lib/crypto";
import { DAY_MS } from "../../lib/time";
import { iso } from "../routes/shared.schemas";
import { err, ok, type Result } from "../../lib/result";
import { type ApiTokenInfo, signInGuard } from "../sign-in-guard";

/**
 * Named API tokens (docs/identity.md), one path for `/admin/tokens` and the dashboard's People
 * page. A token is returned once, by createApiToken; the sign-in guard keeps only its SHA-256.
 * Every change is recorded (audit) before it is made.
 */

/** A token as listed: never the token nor its hash. Times are ISO 8601 UTC. */
export interface ListedToken {
  id: string;
  name: string;
  role: Role;
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  expired: boolean;
  /** To the minute; null when never used. */
  lastUsedAt: string | null;
}

/** A token just created: the only time `token` is seen. */
export interface CreatedToken {
  id: string;
  name: string;
  role: Role;
  token: string;
  expiresAt: string;
}

/** Why a token request was refused. */
export type TokenRefusal = { error: "conflict"; message: string } | { error: "not_found"; message: string };

/** A stored token as listed at `now` (epoch ms). */
export function listedToken(t: ApiTokenInfo, now: number): ListedToken {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    createdBy: t.createdBy,
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
    expired: t.expiresAt <= now,
    lastUsedAt: t.lastUsedAt === null ? null : iso(t.lastUsedAt),
  };
}

/** The tokens not revoked, newest first. */
export async function listApiTokens(env: Bindings): Promise<ListedToken[]> {
  const now = Date.now();
  return (await signInGuard(env).listTokens()).map((t) => listedToken(t, now));
}

/**
 * Creates a token for the request's caller (`createdBy`), valid `expiresInDays` days (already
 * validated with createTokenBody). A name ever used is refused (conflict) before anything is
 * recorded, so no `token.create` names a token never made; then `token.create` is recorded, then
 * the token stored (which still refuses a name taken in between).
 */
export async function createApiToken<E extends AppEnv>(
  c: Context<E>,
  input: { name: string; role: Role; expiresInDays: number },
): Promise<Result<CreatedToken, TokenRefusal>> {
  const { name, role, expiresInDays } = input;
  const now = Date.now();
  const id = `tok_${randomPart(12)}`;
  const token = `cpr_${randomPart(32)}`;
  const expiresAt = now + expiresInDays * DAY_MS;
  const conflict = () => err({ error: "conflict", message: `A token named "${name}" exists or existed; names are never reused. Pick another.` } as const);
  if (await signInGuard(c.env).tokenNameTaken(name)) return conflict();
  await audit(c, { action: "token.create", object: { token: id, name }, after: { name, role, expiresAt: iso(expiresAt) } });
  const created = await signInGuard(c.env).createToken({ id, name, role, hash: sha256Hex(token), createdBy: c.var.actor.id, createdAt: now, expiresAt });
  if (created === "conflict") return conflict();
  return ok({ id, name, role, token, expiresAt: iso(expiresAt) });
}

/**
 * Revokes a token at once. Needs a reason (the API's X-Audit-Reason header, the form's field):
 * without one audit() throws ReasonRequired before anything is recorded or revoked.
 */
export async function revokeApiToken<E extends AppEnv>(c: Context<E>, id: string, reason?: string | null): Promise<Result<null, TokenRefusal>> {
  const guard = signInGuard(c.env);
  const existing = await guard.getToken(id);
  if (!existing) return err({ error: "not_found", message: `No token "${id}".` });
  await audit(c, {
    action: "token.revoke",
    object: { token: id, name: existing.name },
    reason,
    reasonRequired: "Revoking a token needs a reason",
    before: listedToken(existing, Date.now()),
  });
  await guard.revokeToken(id);
  return ok(null);
}

function randomPart(bytes: number): string {
  let s = "";
  for (const b of crypto.getRandomValues(new Uint8Array(bytes))) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
