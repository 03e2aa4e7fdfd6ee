import type { TargetConfig } from "./schemas";

/** Whether a kind glob (`*`, `upload.*`, `upload.completed`) matches a normalized kind. */
export function matchesKind(glob: string, kind: string): boolean {
  if (glob === "*") return true;
  if (glob.endsWith(".*")) return kind.startsWith(glob.slice(0, -1));
  return glob === kind;
}

/**
 * Whether a target wants an event of `kind` from `source`. The `unknown` kind (bodies that
 * did not parse or event names we do not know) only goes to targets that name it explicitly.
 */
export function targetWants(target: Pick<TargetConfig, "events" | "sources">, source: string, kind: string): boolean {
  const fromSource = target.sources.includes("*") || target.sources.includes(source);
  if (!fromSource) return false;
  if (kind === "unknown") return target.events.includes("unknown");
  return target.events.some((g) => matchesKind(g, kind));
}
