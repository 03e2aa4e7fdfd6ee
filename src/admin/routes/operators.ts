import { Hono } from "hono";
import type { AppEnv } from "../../env";
import { requireRole } from "../authz";
import { loadOperators, operatorsSchema } from "../identity/operators";
import { describeAdmin, errorBodySchema } from "../openapi";
import { replaceOperators } from "../service/operators";
import { jsonBody, valid } from "../validation";

/**
 * `/admin/operators`: the roles document of the people and service tokens signed in through
 * Cloudflare Access (admin/identity/operators.ts). Admin only; a change is recorded with the
 * document before and after.
 */
export const operators = new Hono<AppEnv>();

operators.get(
  "/",
  requireRole("admin"),
  describeAdmin({
    tag: "operators",
    summary: "The roles document: Access identities (emails, service:<common_name>) and their roles (admin)",
    responses: { 200: { schema: operatorsSchema, description: "the document; {roles: {}} when none is stored" } },
  }),
  async (c) => c.json(await loadOperators(c.env, 0)),
);

operators.put(
  "/",
  requireRole("admin"),
  describeAdmin({
    tag: "operators",
    summary: "Replace the roles document (admin)",
    responses: {
      200: { schema: operatorsSchema, description: "saved" },
      400: { schema: errorBodySchema, description: "invalid document, with field-level errors" },
    },
  }),
  jsonBody("invalid_document"),
  valid("json", operatorsSchema, "invalid_document"),
  async (c) => {
    const doc = c.req.valid("json");
    await replaceOperators(c, doc);
    return c.json(doc);
  },
);
