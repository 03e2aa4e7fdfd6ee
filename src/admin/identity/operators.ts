import { z } from "zod";
import { type FieldError, toFieldErrors } from "../../config/schemas";
import type { Bindings } from "../../env";
import { ROLES, type Role } from "../../lib/actor";
import { err, ok, type Result } from "../../lib/result";

/**
 * The roles document (KV key `operators`): who, signed in through Cloudflare Access, has which
 * role. `{"roles": {"alice@site.org": "admin", "service:ci-bot": "viewer"}}`. A person is their
 * email in lower case; an Access service token is `service:<common_name>`. Named API tokens carry
 * their own role and are not listed here; ADMIN_TOKEN is always admin. Reads are cached per
 * isolate for ROLES_CACHE_TTL_MS (a PUT clears this isolate's copy at once).
 */

/** The KV key of the roles document. */
export const OPERATORS_KEY = "operators";
/** Entries allowed in the document. */
export const MAX_OPERATORS = 1000;
/** How long a read of the document is reused in one isolate, ms. */
export const ROLES_CACHE_TTL_MS = 5_000;

const EMAIL = /^[^\s@<>()",;:\\[\]]{1,64}@[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)+$/;
const SERVICE = /^service:[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** An identity as the document names it: a lower-case email, or `service:<common_name>`. */
const identitySchema = z.string().superRefine((id, ctx) => {
  if (SERVICE.test(id) || EMAIL.test(id)) return;
  const message =
    id.includes("@") && EMAIL.test(id.toLowerCase())
      ? "write the email address in lower case"
      : "must be a person's email address or service:<common_name> of an Access service token";
  ctx.addIssue({ code: "custom", message });
});

/** The document's schema: identities (lower-case emails or `service:<common_name>`) to roles. */
export const operatorsSchema = z.strictObject({
  roles: z
    .record(identitySchema, z.enum(ROLES, { error: `must be one of ${ROLES.join(", ")}` }), {
      // An invalid key is reported with the key's own message, at its path.
      error: (issue) => (issue.code === "invalid_key" ? issue.issues?.[0]?.message : undefined),
    })
    .refine((roles) => Object.keys(roles).length <= MAX_OPERATORS, `at most ${MAX_OPERATORS} entries`)
    .meta({ description: 'identity → role, e.g. {"alice@site.org": "admin", "service:ci-bot": "viewer"}' }),
});
export type Operators = z.infer<typeof operatorsSchema>;

/** Parses a stored or submitted roles document. */
export function parseOperators(raw: unknown): Result<Operators, FieldError[]> {
  const parsed = operatorsSchema.safeParse(raw);
  return parsed.success ? ok(parsed.data) : err(toFieldErrors(parsed.error));
}

let cache: { at: number; value: Operators } | null = null;

/** The stored document; `{roles: {}}` when it is missing, or invalid (then nobody from Access has a role: fail closed). */
export async function loadOperators(env: Bindings, maxAgeMs = ROLES_CACHE_TTL_MS): Promise<Operators> {
  const now = Date.now();
  if (cache && now - cache.at < maxAgeMs) return cache.value;
  const text = await env.CONFIG.get(OPERATORS_KEY);
  let value: Operators = { roles: {} };
  if (text !== null) {
    try {
      const parsed = parseOperators(JSON.parse(text));
      if (parsed.ok) value = parsed.value;
    } catch {
      // not JSON: nobody has a role until it is fixed
    }
  }
  cache = { at: now, value };
  return value;
}

/** Replaces the document (already validated) and clears this isolate's copy. */
export async function saveOperators(env: Bindings, doc: Operators): Promise<void> {
  await env.CONFIG.put(OPERATORS_KEY, JSON.stringify(doc));
  cache = null;
}

/** Forgets this isolate's copy (tests). */
export function clearOperatorsCache(): void {
  cache = null;
}

/** The role of an Access identity, or null when it has none. */
export async function roleOf(env: Bindings, identity: string): Promise<Role | null> {
  const { roles } = await loadOperators(env);
  return Object.hasOwn(roles, identity) ? roles[identity]! : null;
}
