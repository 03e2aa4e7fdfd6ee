import type { Context } from "hono";
import { Hono } from "hono";
import type { FieldError } from "../../../config/schemas";
import { log } from "../../../lib/log";
import { type AdminEnv, requireAdminPage } from "../../../middleware/admin-auth";
import { loadOperators, operatorsSchema } from "../../identity/operators";
import { createTokenBody, tokenIdParam } from "../../routes/tokens.schemas";
import { replaceOperators } from "../../service/operators";
import { type CreatedToken, createApiToken, listApiTokens, revokeApiToken } from "../../service/tokens";
import { issuesToFields } from "../../validation";
import { formPost } from "../csrf";
import type { Flash } from "../layout";
import { PeoplePage } from "../pages/people";
import { render, renderError } from "../render";
import { formReason, pageRole } from "../roles";

/**
 * `/admin/ui/people` (admin): the roles document and the named API tokens, with the forms that
 * change them through the API's own service functions (service/operators.ts, service/tokens.ts), so
 * a form and an API call validate alike and write the same audit entry. A new token is shown once,
 * in the creation's answer (no-store), never in a redirect, a cookie or a log.
 */
export const people = new Hono<AdminEnv>();

const DONE: Record<string, string> = { "role-set": "Role saved.", "role-removed": "Role removed.", "token-revoked": "Token revoked." };

async function renderPeople(c: Context<AdminEnv>, notice: Flash, created: CreatedToken | null = null, status: 200 | 201 | 400 | 404 | 409 = 200) {
  const [operators, tokens] = await Promise.all([loadOperators(c.env, 0), listApiTokens(c.env)]);
  return render(c, (page) => <PeoplePage page={page} view={{ roles: operators.roles, tokens, notice, created }} />, status);
}

/** Field errors as one line; a roles-document path names the identity (`roles.<identity>` → `<identity>`). */
const describeFields = (fields: FieldError[]) => fields.map((f) => `${f.path.replace(/^roles\./, "")}: ${f.message}`).join("; ");

const field = (form: Record<string, unknown>, name: string) => (typeof form[name] === "string" ? (form[name] as string).trim() : "");

people.get("/", requireAdminPage, pageRole("admin"), async (c) => {
  const done = DONE[c.req.query("done") ?? ""];
  return renderPeople(c, done ? { tone: "ok", text: done } : null);
});

/** Sets one identity's role: the stored document with that entry set, validated and saved as PUT /admin/operators does. */
people.post("/roles", ...formPost, pageRole("admin"), async (c) => {
  const form = await c.req.parseBody();
  const current = await loadOperators(c.env, 0);
  const parsed = operatorsSchema.safeParse({ roles: { ...current.roles, [field(form, "identity")]: field(form, "role") } });
  if (!parsed.success) return renderPeople(c, { tone: "bad", text: `Nothing was changed. ${describeFields(issuesToFields(parsed.error.issues))}` }, null, 400);
  await replaceOperators(c, parsed.data);
  return c.redirect("/admin/ui/people?done=role-set", 303);
});

/** Removes one identity from the document; needs a reason. */
people.post("/roles/remove", ...formPost, pageRole("admin"), async (c) => {
  const identity = field(await c.req.parseBody(), "identity");
  const current = await loadOperators(c.env, 0);
  if (!Object.hasOwn(current.roles, identity))
    return renderPeople(c, { tone: "warn", text: `${identity || "That identity"} has no role; nothing was changed.` }, null, 404);
  const roles = Object.fromEntries(Object.entries(current.roles).filter(([id]) => id !== identity));
  await replaceOperators(c, { roles }, { reason: await formReason(c), reasonRequired: "Removing a person's role needs a reason" });
  return c.redirect("/admin/ui/people?done=role-removed", 303);
});

/** Creates a token and answers with it, this once. */
people.post("/tokens", ...formPost, pageRole("admin"), async (c) => {
  const form = await c.req.parseBody();
  const days = field(form, "expiresInDays");
  const body = createTokenBody.safeParse({ name: field(form, "name"), role: field(form, "role"), expiresInDays: days === "" ? undefined : Number(days) });
  if (!body.success) return renderPeople(c, { tone: "bad", text: `No token was created. ${describeFields(issuesToFields(body.error.issues))}` }, null, 400);
  const created = await createApiToken(c, body.data);
  if (!created.ok) return renderPeople(c, { tone: "bad", text: created.error.message }, null, 409);
  log("info", "API token created from the dashboard", { requestId: c.var.requestId, token: created.value.id, name: created.value.name });
  return renderPeople(c, null, created.value, 201);
});

/** Revokes a token at once; needs a reason. */
people.post("/tokens/:id/revoke", ...formPost, pageRole("admin"), async (c) => {
  const param = tokenIdParam.safeParse({ id: c.req.param("id") });
  if (!param.success) return renderError(c, 404, "No such token.");
  const revoked = await revokeApiToken(c, param.data.id, await formReason(c));
  if (!revoked.ok) return renderError(c, 404, revoked.error.message);
  log("info", "API token revoked from the dashboard", { requestId: c.var.requestId, token: param.data.id });
  return c.redirect("/admin/ui/people?done=token-revoked", 303);
});
