import { z } from "zod";
import { idSchema } from "../../config/schemas";

/** Pieces the admin API's per-resource schemas (`<resource>.schemas.ts` beside each route file) share. */

/** ISO 8601 time with an offset, as epoch ms. */
export const time = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
/** A delivery id as it appears in a path. */
export const deliveryIdParam = z.string().min(1).max(256);

/** ISO 8601 time, as answers carry it. */
export const isoTime = z.iso.datetime();

/** `:id` of a source or target path. */
export const idParam = z.object({ id: idSchema });

/** `:source/:id` of a delivery path. */
export const deliveryParams = z.object({ source: idSchema, id: deliveryIdParam });
