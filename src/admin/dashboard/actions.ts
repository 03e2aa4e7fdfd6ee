import type { TargetConfig } from "../../config/schemas";
import { forgetConfig, loadConfig, saveConfig } from "../../config/store";
import type { Bindings } from "../../env";
import { log } from "../../lib/log";
import { err, ok, type Result } from "../../lib/result";
import { MAX_REPLAY } from "../../outbox/outbox";
import { checkTargetUrl, onTargetSaved } from "../../outbox/policy";
import { outboxAdmin } from "../outbox-routes";
import { outboxOf } from "./data";

/**
 * What the dashboard's buttons do. Replays go through the admin JSON routes in-process, so a
 * button and an API call behave the same; resume and enable/disable call what the API calls.
 */

/** Per target: whether the replay was scheduled, or left alone because the delivery was still pending. */
export interface ReplayOutcome {
  replayed: string[];
  leftAlone: string[];
}

/** Replays one delivery to one target or to every target that has it; null when no target has it. */
export async function replayDelivery(env: Bindings, source: string, id: string, target: string | undefined): Promise<ReplayOutcome | null> {
  const res = await outboxAdmin.request(
    `/deliveries/${encodeURIComponent(source)}/${encodeURIComponent(id)}/replay`,
    { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(target ? { target } : {}) },
    env,
  );
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`replay answered ${res.status}`);
  const body = (await res.json()) as { targets: { target: string; replayed: boolean }[] };
  return { replayed: body.targets.filter((t) => t.replayed).map((t) => t.target), leftAlone: body.targets.filter((t) => !t.replayed).map((t) => t.target) };
}

/** Replays a target's dead deliveries, up to the bulk limit; `more` when some are left for another click. */
export async function replayDead(env: Bindings, target: string): Promise<{ replayed: number; more: boolean }> {
  const res = await outboxAdmin.request(
    "/replay",
    { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ target, state: "dead", limit: MAX_REPLAY }) },
    env,
  );
  if (!res.ok) throw new Error(`bulk replay answered ${res.status}`);
  const body = (await res.json()) as { replayed: number; more: boolean };
  return { replayed: body.replayed, more: body.more };
}

/** Resumes a target: held deliveries go out again, a 410 pause is lifted, the breaker closes. */
export async function resumeTarget(env: Bindings, target: string): Promise<{ resumed: number }> {
  return outboxOf(env, target).resume();
}

/**
 * Enables or disables a target by re-saving its document with `enabled` set, as a PUT of the
 * admin API would (same URL policy); enabling resumes its held deliveries.
 */
export async function setTargetEnabled(env: Bindings, target: string, enabled: boolean): Promise<Result<TargetConfig, string>> {
  forgetConfig("target", target);
  const loaded = await loadConfig(env.CONFIG, "target", target, 0);
  if (loaded.state !== "valid")
    return err(`Only a valid target document can be ${enabled ? "enabled" : "disabled"}; fix it with PUT /admin/targets/${target}.`);
  if (enabled) {
    const url = checkTargetUrl(loaded.config.url, env.ALLOW_HTTP_TARGETS === "true");
    if (!url.ok) return err(`The target's URL ${url.error}; fix it with PUT /admin/targets/${target}.`);
  }
  const config = { ...loaded.config, enabled };
  await saveConfig(env.CONFIG, "target", target, config);
  await onTargetSaved(env, target, config);
  log("info", "config saved", { kind: "target", id: target, enabled, via: "dashboard" });
  return ok(config);
}
