/**
 * The registration check, pure: CentrePoint's webhook registration compared with what the relay
 * expects of it (its ingress URL, enabled, subscribed to every event a target wants). Problems are
 * sentences an operator can act on. Rules: docs/reconciliation.md.
 */
import type { TargetConfig } from "../config/schemas";
import type { Listed } from "../config/store";
import { targetWants } from "../config/match";
import { CENTREPOINT_EVENTS, KINDS_OF_EVENT } from "../providers/centrepoint/constants";
import type { WebhookRegistration } from "../providers/centrepoint/api/schemas";

/** One thing wrong with the registration. */
export interface RegistrationProblem {
  code: "url_mismatch" | "disabled" | "missing_event" | "public_url_invalid";
  message: string;
}

/** The outcome of comparing a registration: problems, and notes (what was not compared, and why). */
export interface RegistrationComparison {
  /** `<RELAY_PUBLIC_URL>/webhooks/<source>`, or null when RELAY_PUBLIC_URL is unset or invalid. */
  expectedUrl: string | null;
  problems: RegistrationProblem[];
  notes: string[];
}

/** What a comparison needs. `publicUrl`: the RELAY_PUBLIC_URL variable ("" or undefined = unset). */
export interface RegistrationInput {
  sourceId: string;
  registration: Pick<WebhookRegistration, "url" | "isDisabled" | "webhookEvents">;
  publicUrl: string | undefined;
  targets: readonly Listed<TargetConfig>[];
}

/** Compares a registration with the relay's expectations. */
export function compareRegistration(input: RegistrationInput): RegistrationComparison {
  const problems: RegistrationProblem[] = [];
  const notes: string[] = [];
  const { registration: reg, sourceId } = input;

  const expected = expectedIngressUrl(input.publicUrl, sourceId);
  if (expected.kind === "unset") notes.push("RELAY_PUBLIC_URL is not set, so the webhook's URL was not compared with this relay's address.");
  else if (expected.kind === "invalid")
    problems.push({
      code: "public_url_invalid",
      message: `RELAY_PUBLIC_URL (${JSON.stringify(input.publicUrl)}) is not an http(s) URL, so the webhook's URL could not be compared; fix the variable in wrangler.toml.`,
    });
  else if (!sameUrl(reg.url, expected.url))
    problems.push({
      code: "url_mismatch",
      message: `CentrePoint sends this webhook to ${reg.url}, not to this relay (${expected.url}): new deliveries do not arrive here. Change the Target URL in the CentrePoint portal (or RELAY_PUBLIC_URL, if that is what is wrong).`,
    });

  if (reg.isDisabled)
    problems.push({
      code: "disabled",
      message: "The webhook is disabled in CentrePoint: it sends nothing until it is enabled again in the CentrePoint portal.",
    });

  const subscribed = new Set(reg.webhookEvents.map((e) => e.name.trim().toLowerCase()));
  for (const event of CENTREPOINT_EVENTS) {
    if (subscribed.has(event)) continue;
    const wanting = input.targets.flatMap((t) =>
      t.valid ? KINDS_OF_EVENT[event].filter((kind) => targetWants(t.config, sourceId, kind)).map((kind) => ({ target: t.id, kind })) : [],
    );
    if (wanting.length === 0) continue;
    const targets = [...new Set(wanting.map((w) => w.target))];
    const kinds = [...new Set(wanting.map((w) => w.kind))];
    problems.push({
      code: "missing_event",
      message: `The webhook is not subscribed to ${event}, but ${targets.length === 1 ? "target" : "targets"} ${targets.join(", ")} ${targets.length === 1 ? "wants" : "want"} ${kinds.join(", ")}: those events never come. Subscribe the webhook to ${event} in the CentrePoint portal, or change the targets' events.`,
    });
  }
  return { expectedUrl: expected.kind === "ok" ? expected.url : null, problems, notes };
}

/** `<publicUrl>/webhooks/<source>` (trailing slashes of the base dropped), or why there is none. */
export function expectedIngressUrl(publicUrl: string | undefined, sourceId: string): { kind: "ok"; url: string } | { kind: "unset" } | { kind: "invalid" } {
  const base = (publicUrl ?? "").trim();
  if (base === "") return { kind: "unset" };
  let parsed: URL;
  try {
    parsed = new URL(base);
  } catch {
    return { kind: "invalid" };
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return { kind: "invalid" };
  return { kind: "ok", url: `${base.replace(/\/+$/, "")}/webhooks/${encodeURIComponent(sourceId)}` };
}

/** Whether two URLs name the same endpoint: scheme and host case-insensitively, default ports, one trailing slash ignored. */
export function sameUrl(a: string, b: string): boolean {
  const norm = (text: string): string | null => {
    try {
      const u = new URL(text.trim());
      return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}${u.search}`;
    } catch {
      return null;
    }
  };
  const [x, y] = [norm(a), norm(b)];
  return x !== null && x === y;
}

/** A stored registration check: what CentrePoint answered and how it compares, or why it could not be read. */
export interface RegistrationCheck extends RegistrationComparison {
  /** Epoch ms. */
  checkedAt: number;
  /** What CentrePoint holds (null when it could not be read). */
  registration: { url: string; isDisabled: boolean; events: string[] } | null;
  /** Why the registration could not be read (plain words, no secrets), or null. */
  error: string | null;
  /** When it could not be read: CentrePoint's HTTP status (null: no answer) and the path template. */
  upstream: { status: number | null; endpoint: string } | null;
}

/** How many problems a check shows: its problems, or 1 when the registration could not be read. */
export function problemCount(check: Pick<RegistrationCheck, "problems" | "error">): number {
  return check.error !== null ? 1 : check.problems.length;
}
