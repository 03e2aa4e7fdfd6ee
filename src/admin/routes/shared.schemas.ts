import { z } from "zod";
import { idSchema } from "../../config/schemas";

/** Pieces the admin API's per-resource schemas (`<resource>.schemas.ts` beside each route file) share. */

/** ISO 8601 time with an offset, as epoch ms. */
export const time = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
/** A delivery id as it appears in a path. */
export const deliveryIdParam = z.string().min(1).max(256);

/** ISO 8601 time, as answers carry every time (the relay keeps them as epoch ms: `iso`, `isoTimes`). */
export const isoTime = z.iso.datetime();

/** Epoch ms as an answer's ISO 8601 time; null (or absent) stays null. */
export function iso(ms: number): string;
export function iso(ms: number | null | undefined): string | null;
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** `value` with the named epoch-ms fields as ISO 8601 (null stays null), the rest as it is. */
export function isoTimes<T extends object, K extends keyof T>(
  value: T,
  keys: readonly K[],
): Omit<T, K> & { [P in K]: T[P] extends number ? string : string | null } {
  const out = { ...value } as Record<string, unknown>;
  for (const key of keys) out[key as string] = iso(value[key] as number | null | undefined);
  return out as never;
}

/** `:id` of a source or target path. */
export const idParam = z.object({ id: idSchema });

/** `:source/:id` of a delivery path. */
export const deliveryParams = z.object({ source: idSchema, id: deliveryIdParam });
