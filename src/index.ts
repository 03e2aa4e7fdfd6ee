import { evaluateIssues } from "./admin/service/issues";
import { app } from "./app";
import { CRON } from "./cron";
import type { Bindings } from "./env";
import { log } from "./lib/log";
import { checkAllLedgers } from "./ledger/scheduled";
import { tickReconcilers } from "./reconcile/scheduled";

export { SignInGuard } from "./admin/sign-in-guard";
export { AuditTrail } from "./audit/trail";
export { Alerts } from "./alerts/alerts";
export { Ledger } from "./ledger/ledger";
export { Outbox } from "./outbox/outbox";
// Deployed under its first class name (wrangler.toml class_name, migration v4): a rename there needs a renamed_classes migration.
export { CentrePointGateway as CentrePointClient } from "./pull/gateway";
export { Puller } from "./pull/puller";
export { Reconciler } from "./reconcile/reconciler";

export default {
  fetch: app.fetch,
  /** Cron Triggers (wrangler.toml), dispatched on the expression. */
  async scheduled(controller, env, ctx) {
    switch (controller.cron) {
      case CRON.integrity:
        ctx.waitUntil(checkAllLedgers(env));
        break;
      case CRON.reconcile:
        ctx.waitUntil(tickReconcilers(env, controller.scheduledTime));
        break;
      case CRON.issues:
        ctx.waitUntil(evaluateIssues(env, controller.scheduledTime));
        break;
      default:
        log("warn", "unknown cron trigger", { cron: controller.cron });
    }
  },
} satisfies ExportedHandler<Bindings>;
