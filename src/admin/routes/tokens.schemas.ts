import { z } from "zod";
import { ROLES } from "../../lib/actor";
import { isoTime } from "./shared.schemas";

/** Requests and answers of `/admin/tokens` (routes/tokens.ts): named API tokens for machines. */

/** Days a token lives when the request names none. */
export const DEFAULT_TOKEN_DAYS = 90;
/** Longest lifetime a token may be given, days. */
export const MAX_TOKEN_DAYS = 365;

/** `POST /admin/tokens` body. */
export const createTokenBody = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "must be 1-64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
    .meta({ description: "unique for ever: the audit trail names the caller token:<name>" }),
  role: z.enum(ROLES),
  expiresInDays: z
    .number()
    .int()
    .min(1)
    .max(MAX_TOKEN_DAYS)
    .default(DEFAULT_TOKEN_DAYS)
    .meta({ description: `days until the token stops working (default ${DEFAULT_TOKEN_DAYS}, at most ${MAX_TOKEN_DAYS})` }),
});

/** `:id` of a token path. */
export const tokenIdParam = z.object({ id: z.string().regex(/^tok_[A-Za-z0-9_-]{16,32}$/, "is not a token id") });

/** The answer of a creation: the token itself, shown this once. */
export const createdTokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  token: z.string().meta({ description: "the bearer token; shown once, only its SHA-256 is kept" }),
  expiresAt: isoTime,
});

/** A listed token (never its hash). */
export const listedTokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  createdBy: z.string(),
  createdAt: isoTime,
  expiresAt: isoTime,
  expired: z.boolean(),
  lastUsedAt: isoTime.nullable().meta({ description: "to the minute; null when never used" }),
});
