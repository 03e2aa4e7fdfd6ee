import type { FC } from "hono/jsx";
import type { SourceConfig, TargetConfig } from "../../../config/schemas";
import type { Listed } from "../../../config/store";
import type { BreakerStatus } from "../../../outbox/breaker";
import type { AttemptView, DispatchState, OutboxHealth } from "../../../outbox/views";
import { Badge, type Tone } from "../layout";

/** Pieces shared by several pages. */

const STATE_TONE: Record<DispatchState, Tone> = { pending: "info", delivering: "info", delivered: "ok", dead: "bad", held: "warn", not_wanted: "muted" };

/** A target delivery state. */
export const StateBadge: FC<{ state: DispatchState }> = ({ state }) => <Badge tone={STATE_TONE[state]}>{state}</Badge>;

/** A circuit breaker status. */
export const BreakerBadge: FC<{ status: BreakerStatus }> = ({ status }) => (
  <Badge tone={status === "closed" ? "ok" : status === "open" ? "bad" : "warn"}>{status.replace("_", "-")}</Badge>
);

const OUTCOME_TONE: Record<AttemptView["outcome"], Tone> = { success: "ok", failure: "bad", in_flight: "info", interrupted: "warn" };

/** The outcome of one attempt. */
export const OutcomeBadge: FC<{ outcome: AttemptView["outcome"] }> = ({ outcome }) => <Badge tone={OUTCOME_TONE[outcome]}>{outcome.replace("_", " ")}</Badge>;

/** Whether a target is sending: invalid, disabled, paused after 410, holding, or enabled. */
export const TargetStateBadge: FC<{ listed: Listed<TargetConfig>; health: OutboxHealth | null }> = ({ listed, health }) => {
  if (!listed.valid) return <Badge tone="bad">invalid document</Badge>;
  if (health?.heldBy === "gone") return <Badge tone="bad">paused (410)</Badge>;
  if (!listed.config.enabled) return <Badge tone="muted">disabled</Badge>;
  if (health?.heldBy === "config") return <Badge tone="warn">holding</Badge>;
  return <Badge tone="ok">enabled</Badge>;
};

/**
 * How a document authenticates, naming secrets but never reading them: `hmac (secret
 * CP_STUDY_42_SECRET)`. Only names come from KV documents; values live in Worker secrets.
 */
export function describeAuth(auth: SourceConfig["auth"] | TargetConfig["auth"] | undefined): string {
  if (!auth) return "none";
  const previous = (name: string | undefined) => (name ? ` (rotating out: ${name} still accepted)` : "");
  switch (auth.type) {
    case "hmac":
      return `HMAC-SHA256 signature, key in secret ${auth.secretEnv}${previous(auth.previousSecretEnv)}`;
    case "basic":
      return `Basic, user ${auth.username}, password in secret ${auth.passwordEnv}${previous("previousPasswordEnv" in auth ? auth.previousPasswordEnv : undefined)}`;
    case "bearer":
      return `Bearer token in secret ${auth.tokenEnv}${previous("previousTokenEnv" in auth ? auth.previousTokenEnv : undefined)}`;
    case "header":
      return `Header ${auth.name}, value in secret ${auth.valueEnv}`;
    case "none":
      return "none";
  }
}

/** Invalid document errors as a list. */
export const FieldErrors: FC<{ errors: { path: string; message: string }[] }> = ({ errors }) => (
  <ul>
    {errors.map((e) => (
      <li>
        <code>{e.path}</code> {e.message}
      </li>
    ))}
  </ul>
);
