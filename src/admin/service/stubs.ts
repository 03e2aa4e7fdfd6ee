import type { Bindings } from "../../env";

/** The ledger of a source (its Durable Object stub). Callers check the source document exists first. */
export const ledgerOf = (env: Bindings, source: string) => env.LEDGER.get(env.LEDGER.idFromName(source));

/** The outbox of a target (its Durable Object stub). Callers check the target document exists first. */
export const outboxOf = (env: Bindings, target: string) => env.OUTBOX.get(env.OUTBOX.idFromName(target));

/** The Reconciler of a source (its Durable Object stub). Callers check the source has a `centrepoint` block first. */
export const reconcilerOf = (env: Bindings, source: string) => env.RECONCILER.get(env.RECONCILER.idFromName(source));
