import type { AlertChannel } from "./alert-schema";
import type { FieldError, SourceConfig, TargetConfig } from "./schemas";

/**
 * Rules for the Worker secrets a document names (`*Env` fields). Every name has one role across all
 * documents: a source's webhook authentication (what CentrePoint authenticates to us with), a
 * CentrePoint API client (named only by sources' `centrepoint` blocks, sent only to CentrePoint's
 * auth server), or a target's (sent to that target). So a target never receives a source's secret,
 * a target's secret never authenticates CentrePoint, and no webhook key ever travels to an API
 * host as a client credential. Documents of one role may share a name (two sources of one API
 * client). An alert channel's secrets (signing key, Slack URL) are outbound like a target's and
 * have the target role. Names the relay itself reads (the admin token, the file-link key, every plain `[vars]`
 * entry) are never a document's secret.
 */

/** What a named secret is for: the one role its name has across all documents. */
export type SecretRole = "webhook" | "api-client" | "target";

const ROLE_TEXT: Record<SecretRole, string> = {
  webhook: "a webhook secret",
  "api-client": "a CentrePoint API-client secret",
  target: "a target's secret",
};

/** A secret named by a document, with the field that names it and its role. */
export interface NamedSecret {
  path: string;
  name: string;
  role: SecretRole;
}

/** Every secret a source names: its auth secret (and the one being rotated out), and its CentrePoint API client. */
export function sourceSecretNames(config: SourceConfig): NamedSecret[] {
  const a = config.auth;
  const out: NamedSecret[] = [];
  const add = (path: string, name: string | undefined, role: SecretRole = "webhook") => name !== undefined && out.push({ path, name, role });
  if (a.type === "hmac") (add("auth.secretEnv", a.secretEnv), add("auth.previousSecretEnv", a.previousSecretEnv));
  if (a.type === "basic") (add("auth.passwordEnv", a.passwordEnv), add("auth.previousPasswordEnv", a.previousPasswordEnv));
  if (a.type === "bearer") (add("auth.tokenEnv", a.tokenEnv), add("auth.previousTokenEnv", a.previousTokenEnv));
  if (config.centrepoint)
    (add("centrepoint.clientIdEnv", config.centrepoint.clientIdEnv, "api-client"),
      add("centrepoint.clientSecretEnv", config.centrepoint.clientSecretEnv, "api-client"));
  return out;
}

/** Every secret a target names: outbound auth, signing keys and the secrets its transform may read. */
export function targetSecretNames(config: TargetConfig): NamedSecret[] {
  const out: NamedSecret[] = [];
  const add = (path: string, name: string) => out.push({ path, name, role: "target" });
  const a = config.auth;
  if (a?.type === "bearer") add("auth.tokenEnv", a.tokenEnv);
  if (a?.type === "basic") add("auth.passwordEnv", a.passwordEnv);
  if (a?.type === "header") add("auth.valueEnv", a.valueEnv);
  if (config.signing) add("signing.secretEnv", config.signing.secretEnv);
  if (config.centrepointSigning) add("centrepointSigning.secretEnv", config.centrepointSigning.secretEnv);
  config.transform?.secrets.forEach((name, i) => add(`transform.secrets.${i}`, name));
  return out;
}

/** Every secret an alert channel names: its signing key (webhook) or its incoming-webhook URL (Slack). */
export function alertSecretNames(config: AlertChannel): NamedSecret[] {
  if (config.type === "webhook") return [{ path: "signing.secretEnv", name: config.signing.secretEnv, role: "target" }];
  if (config.type === "slack") return [{ path: "urlEnv", name: config.urlEnv, role: "target" }];
  return [];
}

/** A listed document, as the conflict check reads it (invalid ones are skipped). */
export type OtherDocument<T> = { id: string; valid: true; config: T } | { id: string; valid: false };

/** The stored documents a document's names are checked against. */
export interface StoredDocuments {
  sources: readonly OtherDocument<SourceConfig>[];
  targets: readonly OtherDocument<TargetConfig>[];
  alerts: readonly OtherDocument<AlertChannel>[];
}

/**
 * Field errors for every secret the document `kind:id` names in a role that another document (or
 * another field of itself) gives that name. Pure; `stored` may include the document itself (skipped).
 */
export function roleConflicts(
  kind: "source" | "target" | "alert",
  id: string,
  mine: SourceConfig | TargetConfig | AlertChannel,
  stored: StoredDocuments,
): FieldError[] {
  const users = new Map<string, { role: SecretRole; user: string }[]>();
  const note = (user: string, names: NamedSecret[]) => {
    for (const n of names) {
      const list = users.get(n.name) ?? [];
      if (!list.some((u) => u.role === n.role)) list.push({ role: n.role, user: `${user} (${n.path})` });
      users.set(n.name, list);
    }
  };
  for (const s of stored.sources) if (s.valid && !(kind === "source" && s.id === id)) note(`source:${s.id}`, sourceSecretNames(s.config));
  for (const t of stored.targets) if (t.valid && !(kind === "target" && t.id === id)) note(`target:${t.id}`, targetSecretNames(t.config));
  for (const a of stored.alerts) if (a.valid && !(kind === "alert" && a.id === id)) note(`alert:${a.id}`, alertSecretNames(a.config));
  const myNames =
    kind === "source"
      ? sourceSecretNames(mine as SourceConfig)
      : kind === "target"
        ? targetSecretNames(mine as TargetConfig)
        : alertSecretNames(mine as AlertChannel);
  note("this document", myNames);
  return myNames.flatMap(({ path, name, role }) => {
    const other = users.get(name)?.find((u) => u.role !== role);
    if (!other) return [];
    return [
      {
        path,
        message: `names ${name}, which ${other.user} also uses as ${ROLE_TEXT[other.role]}; a secret has one role: a source's webhook authentication, a CentrePoint API client (named only in centrepoint blocks) or a target's (alert channels' too)`,
      },
    ];
  });
}
