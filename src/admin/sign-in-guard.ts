import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env";
import { sha256Hex, stringsEqual } from "../lib/crypto";
import { addressGroup } from "../lib/ip";
import type { Role } from "../lib/actor";
import { bumpCounter, COUNTER_HOURS_MIGRATION, COUNTER_SET_MIGRATION } from "../lib/counters";
import { migrate } from "../lib/migrate";

/**
 * Rate limit of admin-token guesses, one Durable Object for the whole relay (named
 * SIGN_IN_GUARD_NAME). Every comparison of a submitted admin token (dashboard sign-in, and a
 * bearer token on /admin/*) happens here, per client address group (an IPv4 address, or an IPv6
 * /64: lib/ip.ts `addressGroup`): at most MAX_FAILURES wrong tokens in a sliding WINDOW_MS,
 * counted in the same step as the comparison, so parallel guesses are counted one by one. Past the
 * limit every attempt from that group (even with the right token) is refused uncompared until the
 * oldest failure leaves the window. Only failures are stored, at most MAX_ROWS of them. Times are
 * epoch ms.
 *
 * The same object keeps the named API tokens (`api_tokens`, only their SHA-256): a bearer request
 * is one round trip, the count, the comparison with ADMIN_TOKEN and the token lookup in one step,
 * and every method shares one failure count. One object serves the whole relay either way (the
 * address group is a column, not the object's name), so the tokens need no object of their own.
 */

/** Failed attempts allowed per address group in the window. */
export const MAX_FAILURES = 10;
/** The window, ms: 5 minutes. */
export const WINDOW_MS = 5 * 60_000;
/** Failures kept at most (oldest dropped first), whatever the number of addresses. */
const MAX_ROWS = 100_000;
/** The one object's name. */
export const SIGN_IN_GUARD_NAME = "dashboard-sign-in";

const MIGRATIONS = [
  `CREATE TABLE failures (
     id INTEGER PRIMARY KEY,
     address TEXT NOT NULL,   -- address group of the attempt (lib/ip.ts addressGroup), or "unknown"
     at INTEGER NOT NULL      -- epoch ms
   );
   CREATE INDEX failures_by_address ON failures (address, at);`,
  `CREATE INDEX failures_by_time ON failures (at);`,
  `CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,   -- unique for ever (revoked ones too): token:<name> names one token in the audit trail
     role TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,   -- SHA-256 (hex) of the token; the token itself is never stored
     created_by TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     last_used_at INTEGER,
     revoked_at INTEGER
   );`,
  `CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  // Counters in one row (lib/counters.ts), as every object keeps them.
  COUNTER_SET_MIGRATION,
  COUNTER_HOURS_MIGRATION,
];

/** Why a sign-in was refused, as counted (the `reason` label of relay_admin_signin_refusals_total). */
export type RefusalReason = "wrong_token" | "expired_token" | "no_role" | `access_${string}`;

/** Days ahead in which a token counts as expiring (relay_api_tokens{state="expiring_14d"}). */
const EXPIRING_DAYS = 14;

/** What /admin/metrics shows of identity: refusals by reason, and the tokens not revoked by state. */
export interface GuardMetrics {
  refusals: Record<string, number>;
  tokens: { active: number; expiring_14d: number; expired: number };
}

/** last_used_at is written at most once per this many ms per token, ms. */
const LAST_USED_EVERY_MS = 60_000;

/** A named API token as listed (never its hash). Times are epoch ms. */
export interface ApiTokenInfo {
  id: string;
  name: string;
  role: Role;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  lastUsedAt: number | null;
}

/** Who a right token is: the break-glass ADMIN_TOKEN or a named API token. */
export type TokenHolder = { kind: "admin-token" } | { kind: "api-token"; id: string; name: string; role: Role };

/** The result of a guarded comparison: right, wrong (counted), or not compared because the address group is locked out. */
export type TokenCheck =
  { result: "right"; holder: TokenHolder } | { result: "wrong" } | { result: "expired"; name: string } | { result: "locked"; retryAfterSeconds: number };

/** The rate limiter (see the file's opening comment). */
export class SignInGuard extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, MIGRATIONS));
  }

  /**
   * One attempt of `group` with a token whose SHA-256 (hex) is `candidateDigest`: refused
   * uncompared when the group has MAX_FAILURES in the window, else compared with ADMIN_TOKEN in
   * constant time, then looked up among the named API tokens (by its digest; revoked ones are
   * gone, expired ones refused); when wrong or expired, recorded. Atomic (no await between the
   * count, the comparison and the insert), so concurrent attempts are counted one after another
   * and a burst of right tokens is never refused.
   */
  async attempt(group: string, candidateDigest: string): Promise<TokenCheck> {
    const now = Date.now();
    const locked = this.lockedFor(group, now);
    if (locked) return locked;
    const token = this.env.ADMIN_TOKEN;
    if (token && stringsEqual(candidateDigest, sha256Hex(token))) return { result: "right", holder: { kind: "admin-token" } };
    const row = this.sql
      .exec<{
        id: string;
        name: string;
        role: Role;
        hash: string;
        expires_at: number;
        last_used_at: number | null;
      }>("SELECT id, name, role, hash, expires_at, last_used_at FROM api_tokens WHERE hash = ? AND revoked_at IS NULL", candidateDigest)
      .toArray()[0];
    if (row && stringsEqual(candidateDigest, row.hash)) {
      if (row.expires_at > now) {
        if (row.last_used_at === null || row.last_used_at <= now - LAST_USED_EVERY_MS)
          this.sql.exec("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", now, row.id);
        return { result: "right", holder: { kind: "api-token", id: row.id, name: row.name, role: row.role } };
      }
      this.fail(group, now, "expired_token");
      return { result: "expired", name: row.name };
    }
    this.fail(group, now, "wrong_token");
    return { result: "wrong" };
  }

  /**
   * Counts a refused sign-in that was not a token comparison (a refused Cloudflare Access JWT, a
   * verified person without a role) against `group`; answers `locked` when the group is already
   * past the limit (then nothing is counted).
   */
  async refusal(group: string, reason: RefusalReason): Promise<{ locked: number | null }> {
    const now = Date.now();
    const locked = this.lockedFor(group, now);
    if (locked) return { locked: locked.retryAfterSeconds };
    this.fail(group, now, reason);
    return { locked: null };
  }

  /** Refusals counted since the object was created, by reason, and the tokens not revoked by state (active includes expiring). */
  async metrics(): Promise<GuardMetrics> {
    const now = Date.now();
    const refusals = Object.fromEntries(
      this.sql
        .exec<{ name: string; value: number }>("SELECT name, value FROM counters WHERE name LIKE 'refused:%'")
        .toArray()
        .map((r) => [r.name.slice("refused:".length), r.value]),
    );
    const t = this.sql
      .exec<{ active: number; soon: number; expired: number }>(
        `SELECT COALESCE(SUM(expires_at > ?1), 0) AS active, COALESCE(SUM(expires_at > ?1 AND expires_at <= ?2), 0) AS soon, COALESCE(SUM(expires_at <= ?1), 0) AS expired
         FROM api_tokens WHERE revoked_at IS NULL`,
        now,
        now + EXPIRING_DAYS * 86_400_000,
      )
      .one();
    return { refusals, tokens: { active: t.active, expiring_14d: t.soon, expired: t.expired } };
  }

  /** Whether a token of this name exists or existed (names are never reused). */
  async tokenNameTaken(name: string): Promise<boolean> {
    return this.sql.exec("SELECT 1 FROM api_tokens WHERE name = ?", name).toArray().length > 0;
  }

  /** Stores a new named API token (its digest only); `conflict` when the name was ever used. */
  async createToken(t: Omit<ApiTokenInfo, "lastUsedAt"> & { hash: string }): Promise<"created" | "conflict"> {
    const taken = this.sql.exec("SELECT 1 FROM api_tokens WHERE name = ?", t.name).toArray().length > 0;
    if (taken) return "conflict";
    this.sql.exec(
      "INSERT INTO api_tokens (id, name, role, hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      t.id,
      t.name,
      t.role,
      t.hash,
      t.createdBy,
      t.createdAt,
      t.expiresAt,
    );
    return "created";
  }

  /** The tokens not revoked (expired ones included, until revoked), newest first. */
  async listTokens(): Promise<ApiTokenInfo[]> {
    return this.sql
      .exec<{ id: string; name: string; role: Role; created_by: string; created_at: number; expires_at: number; last_used_at: number | null }>(
        "SELECT id, name, role, created_by, created_at, expires_at, last_used_at FROM api_tokens WHERE revoked_at IS NULL ORDER BY created_at DESC, id",
      )
      .toArray()
      .map((r) => ({
        id: r.id,
        name: r.name,
        role: r.role,
        createdBy: r.created_by,
        createdAt: r.created_at,
        expiresAt: r.expires_at,
        lastUsedAt: r.last_used_at,
      }));
  }

  /** One token not revoked, or null. */
  async getToken(id: string): Promise<ApiTokenInfo | null> {
    return (await this.listTokens()).find((t) => t.id === id) ?? null;
  }

  /** Revokes a token at once (its digest is dropped; the row stays so its name is never reused); false when there is no such token. */
  async revokeToken(id: string): Promise<boolean> {
    const changed = this.sql.exec("UPDATE api_tokens SET revoked_at = ?, hash = 'revoked:' || id WHERE id = ? AND revoked_at IS NULL", Date.now(), id);
    return changed.rowsWritten > 0;
  }

  private lockedFor(group: string, now: number): { result: "locked"; retryAfterSeconds: number } | null {
    this.sql.exec("DELETE FROM failures WHERE at <= ?", now - WINDOW_MS);
    const rows = this.sql
      .exec<{ at: number }>("SELECT at FROM failures WHERE address = ? ORDER BY at DESC LIMIT ?", group.slice(0, 64), MAX_FAILURES)
      .toArray();
    if (rows.length < MAX_FAILURES) return null;
    const oldest = rows[rows.length - 1]!.at;
    return { result: "locked", retryAfterSeconds: Math.max(1, Math.ceil((oldest + WINDOW_MS - now) / 1000)) };
  }

  private fail(group: string, now: number, reason: RefusalReason): void {
    bumpCounter(this.sql, `refused:${reason}`);
    const id = this.sql.exec<{ id: number }>("INSERT INTO failures (address, at) VALUES (?, ?) RETURNING id", group.slice(0, 64), now).one().id;
    this.sql.exec("DELETE FROM failures WHERE id <= ?", id - MAX_ROWS);
  }
}

/** The relay's one guard object. */
export const signInGuard = (env: Bindings) => env.SIGN_IN_GUARD.get(env.SIGN_IN_GUARD.idFromName(SIGN_IN_GUARD_NAME));

/**
 * Checks a submitted admin token through the guard (see the file's opening comment); only its
 * SHA-256 crosses to the Durable Object. `address` is the client's CF-Connecting-IP (undefined when absent).
 */
export async function checkAdminToken(env: Bindings, address: string | undefined, candidate: string): Promise<TokenCheck> {
  return signInGuard(env).attempt(addressGroup(address), sha256Hex(candidate));
}

/** Counts a refused sign-in that was no token comparison (see SignInGuard.refusal). */
export async function countRefusal(env: Bindings, address: string | undefined, reason: RefusalReason): Promise<{ locked: number | null }> {
  return signInGuard(env).refusal(addressGroup(address), reason);
}
