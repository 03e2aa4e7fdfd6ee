import type { Hono } from "hono";
import { describeRoute, openAPIRouteHandler, resolver } from "hono-openapi";
import { z } from "zod";
import { fieldErrorSchema } from "../config/schemas";
import type { AppEnv } from "../env";
import { RELAY_NAME, RELAY_VERSION } from "../version";

/** The contract's error body. */
export const errorBodySchema = z.object({
  error: z.string().meta({ description: "machine-readable code, e.g. invalid_document" }),
  message: z.string(),
  fields: z.array(fieldErrorSchema).optional().meta({ description: "field-level problems of a refused document or query" }),
});

/** The error body of a 502: what CentrePoint's API answered. */
export const upstreamErrorSchema = errorBodySchema.extend({
  upstream: z
    .object({
      status: z.number().int().nullable().meta({ description: "CentrePoint's HTTP status; null when it could not be reached" }),
      endpoint: z.string().meta({ description: "the API path template that failed" }),
    })
    .optional(),
});

const json = (schema: z.ZodType, description: string) => ({ description, content: { "application/json": { schema: resolver(schema) } } });

/** Standard error responses of every admin route. */
const adminErrors = {
  401: json(errorBodySchema, "missing, wrong or expired token, or a refused Cloudflare Access JWT (`check` names the failed check)"),
  403: json(errorBodySchema, "forbidden: the caller's role is below the one this route needs (docs/audit.md), or a verified Access identity has no role"),
  503: json(
    errorBodySchema,
    "admin_disabled: ADMIN_TOKEN is not set (the admin surface is off); audit_unavailable: the audit entry could not be written, nothing was done",
  ),
};

/**
 * Describes an admin route for the OpenAPI document: tag, summary and answers. Request bodies,
 * queries and paths are documented by the same `valid(...)` validators that check them.
 */
export function describeAdmin(opts: {
  tag: string;
  summary: string;
  /** A JSON answer's schema, or the media type of an answer that is not JSON (a text or NDJSON stream); `headers`: response headers (integer values) and what they say. */
  responses: Record<number, { schema?: z.ZodType; mediaType?: string; description: string; headers?: Record<string, string> }>;
}) {
  const responses: Record<string, unknown> = { ...adminErrors };
  for (const [status, r] of Object.entries(opts.responses)) {
    const answer = r.schema
      ? json(r.schema, r.description)
      : r.mediaType
        ? { description: r.description, content: { [r.mediaType]: { schema: { type: "string" } } } }
        : { description: r.description };
    const headers =
      r.headers && Object.fromEntries(Object.entries(r.headers).map(([name, description]) => [name, { description, schema: { type: "integer" } }]));
    responses[status] = headers ? { ...answer, headers } : answer;
  }
  return describeRoute({ tags: [opts.tag], summary: opts.summary, security: [{ adminToken: [] }, { cloudflareAccess: [] }], responses: responses as never });
}

/** `GET /admin/openapi.json`: the OpenAPI 3.1 document generated from the routes of `app`. */
export function openApiDocument(app: Hono<AppEnv>) {
  return openAPIRouteHandler(app, {
    documentation: {
      info: {
        title: `${RELAY_NAME} admin API`,
        version: RELAY_VERSION,
        description:
          "Sources, targets, deliveries, replay, dead letters, integrity, reconciliation against CentrePoint's delivery history and metrics of the CentrePoint Edge Relay.",
      },
      components: {
        securitySchemes: {
          adminToken: { type: "http", scheme: "bearer", description: "a named API token (POST /admin/tokens), or the ADMIN_TOKEN Worker secret (break-glass)" },
          cloudflareAccess: { type: "apiKey", in: "header", name: "Cf-Access-Jwt-Assertion", description: "the JWT Cloudflare Access adds (docs/identity.md)" },
        },
      },
    },
    exclude: [/^\/webhooks/, /^\/files/, "/", "/healthz", /^\/admin\/openapi\.json$/],
  });
}
