import type { FieldError, SourceConfig, TargetConfig } from "./schemas";

/**
 * Rules for the Worker secrets a document names (`*Env` fields). A secret of a source (what
 * CentrePoint authenticates with, or the study's API client) must never be sent to a target, and a
 * target's secret must never authenticate CentrePoint: each name belongs to sources or to targets,
 * never both. Names the relay itself reads (the admin token, the file-link key, every plain
 * `[vars]` entry) are never a document's secret.
 */

/** Names no document may use as a secret: the relay's own secrets and every `[vars]` entry of wrangler.toml. */
export const RESERVED_SECRET_NAMES: readonly string[] = [
  "ADMIN_TOKEN",
  "FILE_LINK_SECRET",
  "FILE_LINK_SECRET_PREVIOUS",
  "MAX_BODY_BYTES",
  "ALLOW_HTTP_TARGETS",
  "RELAY_PUBLIC_URL",
];

/** A secret named by a document, with the field that names it. */
export interface NamedSecret {
  path: string;
  name: string;
}

/** Every secret a source names: its auth secret (and the one being rotated out), and its CentrePoint API client. */
export function sourceSecretNames(config: SourceConfig): NamedSecret[] {
  const a = config.auth;
  const out: NamedSecret[] = [];
  const add = (path: string, name: string | undefined) => name !== undefined && out.push({ path, name });
  if (a.type === "hmac") (add("auth.secretEnv", a.secretEnv), add("auth.previousSecretEnv", a.previousSecretEnv));
  if (a.type === "basic") (add("auth.passwordEnv", a.passwordEnv), add("auth.previousPasswordEnv", a.previousPasswordEnv));
  if (a.type === "bearer") (add("auth.tokenEnv", a.tokenEnv), add("auth.previousTokenEnv", a.previousTokenEnv));
  if (config.centrepoint)
    (add("centrepoint.clientIdEnv", config.centrepoint.clientIdEnv), add("centrepoint.clientSecretEnv", config.centrepoint.clientSecretEnv));
  return out;
}

/** Every secret a target names: outbound auth, signing keys and the secrets its transform may read. */
export function targetSecretNames(config: TargetConfig): NamedSecret[] {
  const out: NamedSecret[] = [];
  const a = config.auth;
  if (a?.type === "bearer") out.push({ path: "auth.tokenEnv", name: a.tokenEnv });
  if (a?.type === "basic") out.push({ path: "auth.passwordEnv", name: a.passwordEnv });
  if (a?.type === "header") out.push({ path: "auth.valueEnv", name: a.valueEnv });
  if (config.signing) out.push({ path: "signing.secretEnv", name: config.signing.secretEnv });
  if (config.centrepointSigning) out.push({ path: "centrepointSigning.secretEnv", name: config.centrepointSigning.secretEnv });
  config.transform?.secrets.forEach((name, i) => out.push({ path: `transform.secrets.${i}`, name }));
  return out;
}

/** A valid document of the other kind, as the conflict check reads it. */
export type OtherDocument<T> = { id: string; valid: true; config: T } | { id: string; valid: false };

/**
 * Field errors for every secret `mine` names that a document of the other kind also names. Pure;
 * `others` are the documents of the other kind (invalid ones are skipped).
 */
export function roleConflicts(
  kind: "source" | "target",
  mine: SourceConfig | TargetConfig,
  others: readonly OtherDocument<SourceConfig | TargetConfig>[],
): FieldError[] {
  const otherKind = kind === "source" ? "target" : "source";
  const theirNames = new Map<string, string>();
  for (const other of others) {
    if (!other.valid) continue;
    const names = otherKind === "source" ? sourceSecretNames(other.config as SourceConfig) : targetSecretNames(other.config as TargetConfig);
    for (const n of names) if (!theirNames.has(n.name)) theirNames.set(n.name, `${otherKind}:${other.id} (${n.path})`);
  }
  const myNames = kind === "source" ? sourceSecretNames(mine as SourceConfig) : targetSecretNames(mine as TargetConfig);
  return myNames.flatMap(({ path, name }) => {
    const user = theirNames.get(name);
    return user === undefined ? [] : [{ path, message: `names ${name}, which ${user} also uses; a secret belongs to sources or to targets, never both` }];
  });
}
