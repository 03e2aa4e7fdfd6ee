import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env";
import { sha256Hex, stringsEqual } from "../lib/crypto";
import { addressGroup } from "../lib/ip";
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
];

/** The result of a guarded comparison: right, wrong (counted), or not compared because the address group is locked out. */
export type TokenCheck = { result: "right" } | { result: "wrong" } | { result: "locked"; retryAfterSeconds: number };

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
   * constant time and, when wrong, recorded. Atomic (no await between the count, the comparison and
   * the insert), so concurrent attempts are counted one after another and a burst of right tokens
   * is never refused.
   */
  async attempt(group: string, candidateDigest: string): Promise<TokenCheck> {
    const now = Date.now();
    this.sql.exec("DELETE FROM failures WHERE at <= ?", now - WINDOW_MS);
    const key = group.slice(0, 64);
    const rows = this.sql.exec<{ at: number }>("SELECT at FROM failures WHERE address = ? ORDER BY at DESC LIMIT ?", key, MAX_FAILURES).toArray();
    if (rows.length >= MAX_FAILURES) {
      const oldest = rows[rows.length - 1]!.at;
      return { result: "locked", retryAfterSeconds: Math.max(1, Math.ceil((oldest + WINDOW_MS - now) / 1000)) };
    }
    const token = this.env.ADMIN_TOKEN;
    if (token && stringsEqual(candidateDigest, sha256Hex(token))) return { result: "right" };
    const id = this.sql.exec<{ id: number }>("INSERT INTO failures (address, at) VALUES (?, ?) RETURNING id", key, now).one().id;
    this.sql.exec("DELETE FROM failures WHERE id <= ?", id - MAX_ROWS);
    return { result: "wrong" };
  }
}

/**
 * Checks a submitted admin token through the guard (see the file's opening comment); only its
 * SHA-256 crosses to the Durable Object. `address` is the client's CF-Connecting-IP (undefined when absent).
 */
export async function checkAdminToken(env: Bindings, address: string | undefined, candidate: string): Promise<TokenCheck> {
  const guard = env.SIGN_IN_GUARD.get(env.SIGN_IN_GUARD.idFromName(SIGN_IN_GUARD_NAME));
  return guard.attempt(addressGroup(address), sha256Hex(candidate));
}
