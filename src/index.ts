import { app } from "./app";
import type { Bindings } from "./env";
import { checkAllLedgers } from "./ledger/scheduled";

export { SignInGuard } from "./admin/sign-in-guard";
export { Ledger } from "./ledger/ledger";
export { Outbox } from "./outbox/outbox";

export default {
  fetch: app.fetch,
  /** Cron Trigger (wrangler.toml): starts the daily integrity check of every ledger (ledger/scheduled.ts). */
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(checkAllLedgers(env));
  },
} satisfies ExportedHandler<Bindings>;
