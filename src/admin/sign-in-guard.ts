import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env";
import { migrate } from "../lib/migrate";

/**
 * Rate limit of failed dashboard sign-ins, one Durable Object for the whole relay (named
 * SIGN_IN_GUARD_NAME): at most MAX_FAILURES failed sign-ins per client address in a sliding
 * WINDOW_MS; past that, every sign-in from that address (even with the right token) is refused
 * until the oldest failure leaves the window. Only failures are stored, at most MAX_ROWS of them.
 * Times are epoch ms.
 */

/** Failed sign-ins allowed per address in the window. */
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
     address TEXT NOT NULL,   -- CF-Connecting-IP of the failed sign-in, or "unknown"
     at INTEGER NOT NULL      -- epoch ms
   );
   CREATE INDEX failures_by_address ON failures (address, at);`,
];

/** Whether an address may try to sign in now; when not, in how many seconds it may. */
export type SignInAllowance = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** The sign-in rate limiter (see the file's opening comment). */
export class SignInGuard extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, MIGRATIONS));
  }

  /** Whether `address` may try now. */
  async check(address: string): Promise<SignInAllowance> {
    const now = Date.now();
    this.sql.exec("DELETE FROM failures WHERE at <= ?", now - WINDOW_MS);
    const rows = this.sql.exec<{ at: number }>("SELECT at FROM failures WHERE address = ? ORDER BY at DESC LIMIT ?", address, MAX_FAILURES).toArray();
    if (rows.length < MAX_FAILURES) return { allowed: true };
    const oldest = rows[rows.length - 1]!.at;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + WINDOW_MS - now) / 1000)) };
  }

  /** Records a failed sign-in from `address`. */
  async recordFailure(address: string): Promise<void> {
    const id = this.sql.exec<{ id: number }>("INSERT INTO failures (address, at) VALUES (?, ?) RETURNING id", address.slice(0, 64), Date.now()).one().id;
    this.sql.exec("DELETE FROM failures WHERE id <= ?", id - MAX_ROWS);
  }
}
