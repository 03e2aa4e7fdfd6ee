import type { Context } from "hono";
import { Hono } from "hono";
import { idSchema } from "../../../config/schemas";
import { configExists, loadConfig } from "../../../config/store";
import { log } from "../../../lib/log";
import { ok, type Result } from "../../../lib/result";
import { type AdminEnv, requireAdminPage } from "../../../middleware/admin-auth";
import { checkRegistration, reconcileSummary, type Refusal, runReconciliation } from "../../service/reconcile";
import { ledgerOf } from "../../service/stubs";
import { audit } from "../../../audit/audit";
import { formPost } from "../csrf";
import { entriesAbout } from "./audit";
import { formReason, pageRole } from "../roles";
import type { Flash } from "../layout";
import { SourcePage } from "../pages/source";
import { asListed, render, renderError } from "../render";

/**
 * `/admin/ui/sources/:id`: a source's ledger (stats, lifecycle, handshakes) and its CentrePoint API
 * part, with the reconcile, registration-check and full re-verification actions.
 */
export const sources = new Hono<AdminEnv>();

const HANDSHAKES_SHOWN = 50;

async function renderSource(c: Context<AdminEnv>, id: string, flash: Flash, status: 200 | 400 | 404 = 200) {
  // KV first: an unknown id never creates a ledger (or a Reconciler).
  const loaded = await loadConfig(c.env.CONFIG, "source", id, 0);
  if (loaded.state === "missing") return renderError(c, 404, `No source “${id}”.`);
  const ledger = ledgerOf(c.env, id);
  const listed = asListed(id, loaded)!;
  // Stored state only: the page never runs a check (the button below starts one in the background).
  const [stats, handshakes, lifecycle, reconcile, day, week] = await Promise.all([
    ledger.stats(),
    ledger.listHandshakes(HANDSHAKES_SHOWN),
    ledger.lifecycle(),
    reconcileSummary(c.env, listed),
    ledger.trends(24),
    ledger.trends(7 * 24),
  ]);
  const trail = await entriesAbout(c, `source:${id}`);
  const webhookUrl = `${new URL(c.req.url).origin}/webhooks/${id}`;
  return render(
    c,
    (page) => (
      <SourcePage
        page={page}
        id={id}
        webhookUrl={webhookUrl}
        listed={listed}
        stats={stats}
        lifecycle={lifecycle}
        handshakes={handshakes.items}
        handshakesDropped={handshakes.dropped}
        reconcile={reconcile}
        notice={flash}
        trail={trail}
        trends={{ day, week }}
      />
    ),
    status,
  );
}

sources.get("/:id", requireAdminPage, pageRole("viewer"), async (c) => {
  const id = c.req.param("id");
  if (!idSchema.safeParse(id).success) return renderError(c, 404, "No such source.");
  return renderSource(c, id, sourceFlash(c.req.query("done")));
});

/** The notices after a source's POSTs, by done code (a fixed set: nothing from the query string is rendered). */
const SOURCE_FLASH: Record<string, NonNullable<Flash>> = {
  verify: { tone: "ok", text: "Full re-verification started; it runs in small slices between deliveries. Its progress and result show below." },
  reconciled: { tone: "ok", text: "Reconciliation ran; its report is below." },
  reconciling: { tone: "ok", text: "Reconciliation started; the history is longer than one step, so it continues in the background. Reload to follow it." },
  "reconcile-failed": { tone: "bad", text: "The reconciliation failed; the report below says why." },
  registration: { tone: "ok", text: "Registration checked; the result is below." },
  "registration-failed": { tone: "bad", text: "The registration could not be read; the result below says why." },
};

/** The notice after a source's POST, or null. */
function sourceFlash(done: string | undefined): Flash {
  return (done !== undefined && Object.hasOwn(SOURCE_FLASH, done) ? SOURCE_FLASH[done] : null) ?? null;
}

/** A POST on a source's CentrePoint API part: runs `act`, then redirects back with a done code (a 502 is one), or shows the refusal. */
function sourceAction(act: (c: Context<AdminEnv>, id: string) => Promise<Result<string, Refusal>>) {
  return async (c: Context<AdminEnv>) => {
    const id = c.req.param("id")!;
    if (!idSchema.safeParse(id).success || !(await configExists(c.env.CONFIG, "source", id))) return renderError(c, 404, "No such source.");
    const result = await act(c, id);
    if (!result.ok) return renderSource(c, id, { tone: "bad", text: result.error.message }, 400);
    return c.redirect(`/admin/ui/sources/${id}?done=${result.value}`, 303);
  };
}

sources.post(
  "/:id/reconcile",
  ...formPost,
  pageRole("operator"),
  sourceAction(async (c, id) => {
    await audit(c, { action: "source.reconcile", object: { source: id }, reason: await formReason(c) });
    const run = await runReconciliation(c.env, id, "dashboard");
    if (!run.ok) return run.error.status === 502 ? ok("reconcile-failed") : run;
    return ok(run.value.complete ? "reconciled" : "reconciling");
  }),
);

sources.post(
  "/:id/registration",
  ...formPost,
  pageRole("viewer"), // a read of CentrePoint's registration: nothing changes
  sourceAction(async (c, id) => {
    const check = await checkRegistration(c.env, id);
    if (!check.ok) return check.error.status === 502 ? ok("registration-failed") : check;
    return ok("registration");
  }),
);

sources.post(
  "/:id/verify",
  ...formPost,
  pageRole("operator"),
  sourceAction(async (c, id) => {
    await audit(c, { action: "source.integrity-run", object: { source: id }, after: { full: true }, reason: await formReason(c) });
    const status = await ledgerOf(c.env, id).checkIntegrity({ full: true });
    log("info", "full integrity re-verification from the dashboard", { requestId: c.var.requestId, source: id, running: status.running !== null });
    return ok("verify");
  }),
);
