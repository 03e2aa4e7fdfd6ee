/** The Cron Triggers of wrangler.toml `[triggers]`, by expression (src/index.ts dispatches on them). */
export const CRON = {
  /** Daily full integrity check of every ledger (src/ledger/scheduled.ts). */
  integrity: "17 3 * * *",
  /** Every 5 minutes: starts the reconciliations that are due (src/reconcile/scheduled.ts). */
  reconcile: "*/5 * * * *",
  /** Every minute: evaluates the alert conditions, opens and resolves issues (src/admin/service/issues.ts, docs/alerting.md). */
  issues: "* * * * *",
} as const;
