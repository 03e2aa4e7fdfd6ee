/**
 * The admin API's one time format (ISO 8601): which fields are times, and where an answer or a
 * schema of the OpenAPI document breaks the rule.
 */

/** A field that holds a time: `at`, `…At`, `…Utc`. */
export const TIME_FIELD = /^(at|[a-z][A-Za-z0-9]*(At|Utc))$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** Epoch ms from 2001 to far beyond 2100, however the field is named. */
const looksLikeEpochMs = (v: unknown) => typeof v === "number" && v >= 1e12 && v <= 1e16;

/** Paths in a JSON answer where a time is not an ISO 8601 string (or null), or a number looks like epoch ms. */
export function nonIsoTimes(value: unknown, path = "$"): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => nonIsoTimes(v, `${path}[${i}]`));
  if (typeof value !== "object" || value === null) return looksLikeEpochMs(value) ? [`${path} = ${String(value)}`] : [];
  return Object.entries(value).flatMap(([key, v]) => {
    const at = `${path}.${key}`;
    if (TIME_FIELD.test(key) && v !== null && !(typeof v === "string" && ISO.test(v))) return [`${at} = ${JSON.stringify(v)}`];
    return nonIsoTimes(v, at);
  });
}

type Schema = Record<string, any>;

/** Whether a JSON schema (OpenAPI 3.1) is an ISO 8601 string, null allowed. */
function isIsoSchema(s: Schema, resolve: (s: Schema) => Schema): boolean {
  s = resolve(s);
  const variants = s.anyOf ?? s.oneOf;
  if (Array.isArray(variants)) return variants.every((v: Schema) => resolve(v).type === "null" || isIsoSchema(v, resolve));
  const types = Array.isArray(s.type) ? s.type.filter((t: string) => t !== "null") : [s.type];
  return types.length === 1 && types[0] === "string" && s.format === "date-time";
}

/** Places in an OpenAPI document's JSON answers where a time field is not an ISO 8601 string, or a field says "epoch". */
export function nonIsoSchemas(doc: { paths: Record<string, Record<string, any>>; components?: { schemas?: Record<string, Schema> } }): string[] {
  const resolve = (s: Schema): Schema => {
    const ref = typeof s.$ref === "string" ? /^#\/components\/schemas\/(.+)$/.exec(s.$ref) : null;
    return ref ? resolve(doc.components!.schemas![ref[1]!]!) : s;
  };
  const out: string[] = [];
  const walk = (raw: Schema, at: string, depth: number): void => {
    if (depth > 40) throw new Error(`schema nested too deep at ${at}`);
    const s = resolve(raw);
    for (const [key, sub] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) {
      if (TIME_FIELD.test(key) && !isIsoSchema(sub, resolve)) out.push(`${at}.${key}`);
      if (/epoch/i.test(JSON.stringify(resolve(sub).description ?? ""))) out.push(`${at}.${key} (described as epoch)`);
      walk(sub, `${at}.${key}`, depth + 1);
    }
    for (const k of ["anyOf", "oneOf", "allOf"]) for (const v of (s[k] ?? []) as Schema[]) walk(v, at, depth + 1);
    if (s.items) walk(s.items, `${at}[]`, depth + 1);
    if (typeof s.additionalProperties === "object") walk(s.additionalProperties, `${at}{}`, depth + 1);
  };
  for (const [path, methods] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(methods))
      for (const [status, answer] of Object.entries((op?.responses ?? {}) as Record<string, any>)) {
        const schema = answer?.content?.["application/json"]?.schema;
        if (schema) walk(schema, `${method.toUpperCase()} ${path} ${status}`, 0);
      }
  return out;
}
