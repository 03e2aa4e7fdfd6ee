import type { Context } from "hono";
import { Hono } from "hono";
import { csrf } from "hono/csrf";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import type { JSX } from "hono/jsx/jsx-runtime";
import { idSchema } from "../../config/schemas";
import { configExists, type Listed, listConfigs, type Loaded, loadConfig } from "../../config/store";
import { log } from "../../lib/log";
import { ok, type Result } from "../../lib/result";
import {
  type AdminEnv,
  type AdminIdentity,
  csrfToken,
  endSession,
  formBinding,
  isCsrfToken,
  requireAdminEnabled,
  requireAdminPage,
  startSession,
} from "../../middleware/admin-auth";
import { checkAdminToken } from "../sign-in-guard";
import { audit } from "../../audit/audit";
import type { AppEnv } from "../../env";
import { MAX_REPLAY } from "../../outbox/views";
import { deliveryListQuery } from "../routes/deliveries.schemas";
import { findDeliveryById, getDeliveryDetail, listDeliveries } from "../service/deliveries";
import { setTargetEnabled } from "../service/documents";
import { summarizeSources, summarizeTargets } from "../service/overview";
import { type PullSummary, releaseEnrichment, retryEnrichment, summarizePull } from "../service/pull";
import { checkRegistration, reconcileSummary, type Refusal, runReconciliation } from "../service/reconcile";
import { replayDelivery, replayMany, resumeTarget } from "../service/replay";
import { ledgerOf, outboxOf } from "../service/stubs";
import { issuesToFields } from "../validation";
import { plural, utcInputToIso } from "./format";
import { type Flash, Layout, Notice, type PageContext } from "./layout";
import { DeliveriesPage, type DeliveryFilters, deliveryHref } from "./pages/deliveries";
import type { ListedDelivery } from "../service/deliveries";
import { DeliveryPage, PreviewPage } from "./pages/delivery";
import { previewDelivery } from "../service/preview";
import { LoginPage } from "./pages/login";
import { OverviewPage } from "./pages/overview";
import { SourcePage } from "./pages/source";
import { TARGET_TABS, TargetPage, type TargetTab } from "./pages/target";

/**
 * The operator dashboard, server-rendered HTML: `/admin/` overview, `/admin/login`,
 * `/admin/logout` and the pages under `/admin/ui/`. Mounted at the root so that `/admin/` itself
 * is a route. Pages need a session (or the bearer); every POST needs a same-origin Origin /
 * Sec-Fetch-Site and the session's CSRF token. See docs/dashboard.md.
 */
export const dashboard = new Hono<AdminEnv>();

const PAGE_SIZE = 50;
const HANDSHAKES_SHOWN = 50;

/** Same-origin check of state-changing requests (Origin or Sec-Fetch-Site), from hono/csrf. */
const sameOrigin = csrf();

/** The session's CSRF token must come with every form (bearer callers cannot be forged and skip it). */
const checkCsrfToken = createMiddleware<AdminEnv>(async (c, next) => {
  const binding = formBinding(c.var.admin);
  if (binding !== null) {
    const form = await c.req.parseBody();
    const token = typeof form._csrf === "string" ? form._csrf : "";
    if (!(await isCsrfToken(c.env, binding, token))) {
      log("warn", "dashboard form refused: bad CSRF token", { requestId: c.var.requestId, path: c.req.path });
      return renderError(c, 403, "This form has expired or did not come from this dashboard. Go back, reload the page and try again.");
    }
  }
  await next();
});

dashboard.onError((e, c) => {
  if (e instanceof HTTPException && e.status === 403)
    return renderError(c, 403, "This request did not come from this dashboard's own pages, so it was refused.");
  log("error", "dashboard error", { requestId: c.var.requestId, path: c.req.path, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  return renderError(c, 500, "Something went wrong while building this page. The details are in the Worker's logs.");
});

// ---- sign-in ---------------------------------------------------------------------------------

dashboard.get("/admin/login", requireAdminEnabled, async (c) => {
  const notice = c.req.query("done") === "signed-out" ? "You are signed out." : null;
  return render(c, (page) => <LoginPage page={page} next={safeNext(c.req.query("next"))} error={null} notice={notice} />);
});

dashboard.post("/admin/login", requireAdminEnabled, sameOrigin, async (c) => {
  const form = await c.req.parseBody();
  const next = safeNext(typeof form.next === "string" ? form.next : undefined);
  const token = typeof form.token === "string" ? form.token : "";
  const address = c.req.header("cf-connecting-ip");
  const checked = await checkAdminToken(c.env, address, token);
  if (checked.result === "locked") {
    log("warn", "dashboard sign-in rate-limited", { requestId: c.var.requestId, ip: address ?? "unknown", retryAfterSeconds: checked.retryAfterSeconds });
    c.header("Retry-After", String(checked.retryAfterSeconds));
    const wait = `Too many failed sign-ins from this address. Try again in ${Math.ceil(checked.retryAfterSeconds / 60)} min.`;
    return render(c, (page) => <LoginPage page={page} next={next} error={wait} notice={null} />, 429);
  }
  if (checked.result !== "right" || checked.holder.kind !== "admin-token") {
    log("warn", "dashboard sign-in refused", { requestId: c.var.requestId, ip: address ?? "unknown" });
    await audit(asApp(c), { action: "signin.refused", object: { method: "admin-token" }, reason: "not the admin token" });
    const error =
      checked.result === "right" || checked.result === "expired"
        ? "API tokens are for the API; sign in with the admin token or through Cloudflare Access."
        : "That is not the admin token.";
    return render(c, (page) => <LoginPage page={page} next={next} error={error} notice={null} />, 401);
  }
  c.set("actor", { id: "admin-token", role: "admin", via: "dashboard", address: address ?? null });
  await audit(asApp(c), { action: "signin", object: { method: "admin-token" } });
  await startSession(c);
  log("info", "dashboard sign-in", { requestId: c.var.requestId, ip: c.req.header("cf-connecting-ip") ?? null });
  return c.redirect(next, 303);
});

/** Signs out: ends the relay's session; a person signed in through Cloudflare Access is sent on to Access's own sign-out. */
dashboard.post("/admin/logout", requireAdminEnabled, sameOrigin, requireAdminPage, checkCsrfToken, async (c) => {
  await audit(asApp(c), { action: "signout", object: { method: c.var.admin.via } });
  endSession(c);
  if (c.var.admin.via === "access") return c.redirect("/cdn-cgi/access/logout", 303);
  return c.redirect("/admin/login?done=signed-out", 303);
});

/** The dashboard's context as the audit trail reads it (the same request; AdminEnv only adds `admin`). */
const asApp = (c: Context<AdminEnv>) => c as unknown as Context<AppEnv>;

// ---- overview --------------------------------------------------------------------------------

const overview = async (c: Context<AdminEnv>) => {
  const [sources, targets, pull] = await Promise.all([summarizeSources(c.env), summarizeTargets(c.env), summarizePullQuietly(c.env)]);
  return render(c, (page) => <OverviewPage page={page} sources={sources} targets={targets} pull={pull} />);
};

/** The pull side's summary for the overview, or null (logged) when a Durable Object fails to answer. */
async function summarizePullQuietly(env: AdminEnv["Bindings"]): Promise<PullSummary | null> {
  try {
    const [sources, targets] = await Promise.all([listConfigs(env.CONFIG, "source"), listConfigs(env.CONFIG, "target")]);
    return await summarizePull(env, sources, targets);
  } catch (e) {
    log("error", "admin read failed", { what: "pull", error: e instanceof Error ? e.message : String(e) });
    return null;
  }
}
dashboard.get("/admin", requireAdminPage, overview);
dashboard.get("/admin/", requireAdminPage, overview);
dashboard.get("/admin/ui", requireAdminPage, (c) => c.redirect("/admin/", 302));

// ---- deliveries ------------------------------------------------------------------------------

dashboard.get("/admin/ui/deliveries", requireAdminPage, async (c) => {
  const q = c.req.query();
  const filters: DeliveryFilters = {
    q: (q.q ?? "").trim().slice(0, 256),
    source: idSchema.safeParse(q.source).success ? q.source! : "",
    kind: (q.kind ?? "").slice(0, 64),
    from: utcInputToIso(q.from),
    to: utcInputToIso(q.to),
    attention: q.attention === "true",
    provenance: q.provenance === "webhook" || q.provenance === "centrepoint-history" ? q.provenance : "",
  };
  let matches: { source: string; id: string }[] = [];
  if (filters.q) {
    // An exact delivery id opens it; anything else searches subjects, upload and tracking ids.
    const sources = await findDeliveryById(c.env, filters.q, filters.source || undefined);
    if (sources.length === 1) return c.redirect(deliveryHref(sources[0]!, filters.q), 302);
    matches = sources.map((source) => ({ source, id: filters.q }));
  }
  // The same query rules as GET /admin/deliveries (admin/routes/deliveries.schemas.ts).
  const query = deliveryListQuery.safeParse({
    q: filters.q || undefined,
    source: filters.source || undefined,
    kind: filters.kind || undefined,
    from: filters.from ?? undefined,
    to: filters.to ?? undefined,
    attention: filters.attention ? "true" : undefined,
    provenance: filters.provenance || undefined,
    cursor: q.cursor,
    limit: PAGE_SIZE,
  });
  let listing: { items: ListedDelivery[]; next: string | null; error: string | null } = { items: [], next: null, error: null };
  if (!query.success)
    listing.error = `Invalid filter. ${issuesToFields(query.error.issues)
      .map((f) => `${f.path} ${f.message}`)
      .join("; ")}`;
  else {
    const page = await listDeliveries(c.env, { ...query.data, attention: filters.attention });
    listing = page.ok
      ? { items: page.items, next: page.next, error: null }
      : { items: [], next: null, error: "Invalid cursor: start again from the first page." };
  }
  const sourceList = await listConfigs(c.env.CONFIG, "source");
  return render(c, (page) => (
    <DeliveriesPage
      page={page}
      filters={filters}
      sourceIds={sourceList.map((s) => s.id)}
      items={listing.items}
      next={listing.next}
      error={listing.error}
      matches={matches}
    />
  ));
});

dashboard.get("/admin/ui/deliveries/:source/:id", requireAdminPage, async (c) => {
  const { source, id } = c.req.param();
  const d = idSchema.safeParse(source).success ? await getDeliveryDetail(c.env, source, id) : null;
  if (!d) return renderError(c, 404, `No delivery “${id}” in source “${source}”.`);
  const n = (name: string) => Math.min(Math.max(Number(c.req.query(name) ?? 0) || 0, 0), 1000);
  let notice: Flash = ENRICHMENT_FLASH[c.req.query("done") ?? ""] ?? null;
  if (c.req.query("done") === "released") {
    const released = n("released");
    notice =
      released > 0
        ? { tone: "ok", text: `Released: ${plural(released, "target")} get the event now, with what enrichment found.` }
        : { tone: "warn", text: "Nothing to release: no target was waiting." };
  }
  if (c.req.query("done") === "replay") {
    const replayed = n("replayed");
    const left = n("left");
    const parts = [];
    if (replayed > 0) parts.push(`Replay scheduled for ${replayed === 1 ? "1 target" : `${replayed} targets`}; the attempts appear below as they happen.`);
    if (left > 0) parts.push(`${left === 1 ? "1 target" : `${left} targets`} still had it pending or in flight, so nothing changed there.`);
    notice = parts.length
      ? { tone: replayed > 0 ? "ok" : "warn", text: parts.join(" ") }
      : { tone: "warn", text: "Nothing to replay: no target has this delivery yet." };
  }
  return render(c, (page) => <DeliveryPage page={page} d={d} notice={notice} />);
});

dashboard.get("/admin/ui/deliveries/:source/:id/preview", requireAdminPage, async (c) => {
  const { source, id } = c.req.param();
  const target = c.req.query("target") ?? "";
  if (!idSchema.safeParse(source).success || !idSchema.safeParse(target).success) return renderError(c, 404, "No such source or target.");
  const loaded = await loadConfig(c.env.CONFIG, "target", target, 0);
  if (loaded.state !== "valid") return renderError(c, 404, `Target “${target}” is missing or invalid; fix its document to preview it.`);
  const preview = await previewDelivery(c.env, target, loaded.config, source, id);
  if (!preview.ok) return renderError(c, 404, preview.error);
  return render(c, (page) => <PreviewPage page={page} source={source} deliveryId={id} target={target} preview={preview.value} />);
});

dashboard.post("/admin/ui/deliveries/:source/:id/replay", sameOrigin, requireAdminPage, checkCsrfToken, async (c) => {
  const { source, id } = c.req.param();
  if (!idSchema.safeParse(source).success) return renderError(c, 404, "No such source.");
  const form = await c.req.parseBody();
  const target = typeof form.target === "string" && idSchema.safeParse(form.target).success ? form.target : undefined;
  const outcome = await replayDelivery(c.env, source, id, target);
  if (!outcome.ok && outcome.error.error === "archive_missing") {
    // Shown on the delivery's page at once: the message names what is missing.
    const d = await getDeliveryDetail(c.env, source, id);
    log("warn", "replay from the dashboard refused", { requestId: c.var.requestId, source, deliveryId: id, reason: outcome.error.message });
    if (d) return render(c, (page) => <DeliveryPage page={page} d={d} notice={{ tone: "bad", text: outcome.error.message }} />, 409);
  }
  const targets = outcome.ok ? outcome.value.targets : [];
  const replayed = targets.filter((t) => t.replayed).length;
  const left = targets.length - replayed;
  log("info", "replay from the dashboard", { requestId: c.var.requestId, source, deliveryId: id, target: target ?? "*", replayed });
  const query = new URLSearchParams({ done: "replay", replayed: String(replayed), left: String(left) });
  return c.redirect(`${deliveryHref(source, id)}?${query}`, 303);
});

/** The notices after the enrichment actions, by done code (a fixed set). */
const ENRICHMENT_FLASH: Record<string, NonNullable<Flash>> = {
  "enrichment-retry": {
    tone: "ok",
    text: "Enrichment is looked up again now. Targets still waiting or held get the new result; targets already sent this event keep what they received (a replay resends that).",
  },
  "enrichment-none": { tone: "warn", text: "No enrichment was planned for this delivery (no target wanted one), or it settled more than 30 days ago." },
};

/** A POST on a delivery's enrichment: runs `act`, then redirects back with a done code, or shows the refusal. */
function enrichmentAction(act: (c: Context<AdminEnv>, source: string, id: string) => Promise<Result<string, Refusal>>) {
  return async (c: Context<AdminEnv>) => {
    const { source, id } = c.req.param() as { source: string; id: string };
    if (!idSchema.safeParse(source).success) return renderError(c, 404, "No such source.");
    const result = await act(c, source, id);
    if (!result.ok && result.error.status === 404) return renderError(c, 404, result.error.message);
    if (!result.ok) return c.redirect(`${deliveryHref(source, id)}?done=enrichment-none`, 303);
    return c.redirect(`${deliveryHref(source, id)}?${result.value}`, 303);
  };
}

/** The enrichment actions of the delivery page: what each runs and the done code it redirects with. */
const ENRICHMENT_ACTIONS: Record<"retry" | "release", (c: Context<AdminEnv>, source: string, id: string) => Promise<Result<string, Refusal>>> = {
  retry: async (c, source, id) => {
    const job = await retryEnrichment(c.env, source, id);
    return job.ok ? ok("done=enrichment-retry") : job;
  },
  release: async (c, source, id) => {
    const released = await releaseEnrichment(c.env, source, id);
    return released.ok ? ok(`done=released&released=${released.value.released}`) : released;
  },
};

for (const [name, act] of Object.entries(ENRICHMENT_ACTIONS)) {
  dashboard.post(
    `/admin/ui/deliveries/:source/:id/enrichment/${name}`,
    sameOrigin,
    requireAdminPage,
    checkCsrfToken,
    enrichmentAction(async (c, source, id) => {
      const done = await act(c, source, id);
      if (done.ok) log("info", `enrichment ${name} from the dashboard`, { requestId: c.var.requestId, source, deliveryId: id, done: done.value });
      return done;
    }),
  );
}

// ---- targets ---------------------------------------------------------------------------------

async function renderTarget(c: Context<AdminEnv>, id: string, flash: Flash, status: 200 | 400 | 404 = 200) {
  // KV first: an unknown id never creates an outbox.
  const loaded = await loadConfig(c.env.CONFIG, "target", id, 0);
  if (loaded.state === "missing") return renderError(c, 404, `No target “${id}”.`);
  const outbox = outboxOf(c.env, id);
  const health = await outbox.health();
  const listed = asListed(id, loaded);
  const asked = c.req.query("state");
  const tab: TargetTab = TARGET_TABS.includes(asked as TargetTab) ? (asked as TargetTab) : health.counts.dead > 0 ? "dead" : "all";
  const cursor = /^\d{1,15}$/.test(c.req.query("cursor") ?? "") ? c.req.query("cursor") : undefined;
  const listing = await outbox.list({ state: tab === "all" ? undefined : tab, limit: PAGE_SIZE, cursor });
  // The pending tab shows rows being sent too.
  const items = tab === "pending" && !cursor ? [...(await outbox.list({ state: "delivering", limit: PAGE_SIZE })).items, ...listing.items] : listing.items;
  return render(
    c,
    (page) => <TargetPage page={page} id={id} listed={listed} health={health} tab={tab} items={items} next={listing.cursor} notice={flash} />,
    status,
  );
}

dashboard.get("/admin/ui/targets/:id", requireAdminPage, async (c) => {
  const id = c.req.param("id");
  if (!idSchema.safeParse(id).success) return renderError(c, 404, "No such target.");
  return renderTarget(c, id, targetFlash(c));
});

function targetFlash(c: Context<AdminEnv>): Flash {
  const n = Math.min(Math.max(Number(c.req.query("n") ?? 0) || 0, 0), 1_000_000);
  switch (c.req.query("done")) {
    case "resumed":
      return {
        tone: "ok",
        text:
          n > 0
            ? `Resumed: ${n === 1 ? "1 held delivery goes" : `${n} held deliveries go`} out again now.`
            : "Resumed: the pause is lifted and the breaker closed; nothing was held.",
      };
    case "replayed":
      return {
        tone: "ok",
        text: `${n === 1 ? "1 dead delivery" : `${n} dead deliveries`} scheduled again${c.req.query("more") === "1" ? "; more are left, click again for the next batch" : ""}.`,
      };
    case "enabled":
      return { tone: "ok", text: "Enabled: the target receives new events and its held deliveries go out again." };
    case "disabled":
      return { tone: "warn", text: "Disabled: new events for this target are held (never dropped) until it is enabled again." };
    default:
      return null;
  }
}

/** A POST on a target: validates the id, runs `act`, and redirects back with a done code (or renders its error). */
function targetAction(act: (c: Context<AdminEnv>, id: string) => Promise<string | { error: string }>) {
  return async (c: Context<AdminEnv>) => {
    const id = c.req.param("id")!;
    if (!idSchema.safeParse(id).success || !(await configExists(c.env.CONFIG, "target", id))) return renderError(c, 404, "No such target.");
    const result = await act(c, id);
    if (typeof result !== "string") return renderTarget(c, id, { tone: "bad", text: result.error }, 400);
    return c.redirect(`/admin/ui/targets/${id}?${result}`, 303);
  };
}

const targetPost = [sameOrigin, requireAdminPage, checkCsrfToken] as const;

dashboard.post(
  "/admin/ui/targets/:id/resume",
  ...targetPost,
  targetAction(async (c, id) => {
    const { resumed } = (await resumeTarget(c.env, id)) ?? { resumed: 0 };
    log("info", "target resumed from the dashboard", { requestId: c.var.requestId, target: id, resumed });
    return `done=resumed&n=${resumed}`;
  }),
);

dashboard.post(
  "/admin/ui/targets/:id/replay-dead",
  ...targetPost,
  targetAction(async (c, id) => {
    const { replayed, more } = await replayMany(c.env, { target: id, state: "dead", limit: MAX_REPLAY });
    log("info", "dead deliveries replayed from the dashboard", { requestId: c.var.requestId, target: id, replayed, more });
    return `done=replayed&n=${replayed}&more=${more ? 1 : 0}`;
  }),
);

for (const enabled of [true, false]) {
  dashboard.post(
    `/admin/ui/targets/:id/${enabled ? "enable" : "disable"}`,
    ...targetPost,
    targetAction(async (c, id) => {
      const r = await setTargetEnabled(c.env, id, enabled);
      return r.ok ? `done=${enabled ? "enabled" : "disabled"}` : { error: r.error };
    }),
  );
}

// ---- sources ---------------------------------------------------------------------------------

async function renderSource(c: Context<AdminEnv>, id: string, flash: Flash, status: 200 | 400 | 404 = 200) {
  // KV first: an unknown id never creates a ledger (or a Reconciler).
  const loaded = await loadConfig(c.env.CONFIG, "source", id, 0);
  if (loaded.state === "missing") return renderError(c, 404, `No source “${id}”.`);
  const ledger = ledgerOf(c.env, id);
  const listed = asListed(id, loaded)!;
  // Stored state only: the page never runs a check (the button below starts one in the background).
  const [stats, handshakes, lifecycle, reconcile] = await Promise.all([
    ledger.stats(),
    ledger.listHandshakes(HANDSHAKES_SHOWN),
    ledger.lifecycle(),
    reconcileSummary(c.env, listed),
  ]);
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
      />
    ),
    status,
  );
}

dashboard.get("/admin/ui/sources/:id", requireAdminPage, async (c) => {
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

dashboard.post(
  "/admin/ui/sources/:id/reconcile",
  sameOrigin,
  requireAdminPage,
  checkCsrfToken,
  sourceAction(async (c, id) => {
    const run = await runReconciliation(c.env, id, "dashboard");
    if (!run.ok) return run.error.status === 502 ? ok("reconcile-failed") : run;
    return ok(run.value.complete ? "reconciled" : "reconciling");
  }),
);

dashboard.post(
  "/admin/ui/sources/:id/registration",
  sameOrigin,
  requireAdminPage,
  checkCsrfToken,
  sourceAction(async (c, id) => {
    const check = await checkRegistration(c.env, id);
    if (!check.ok) return check.error.status === 502 ? ok("registration-failed") : check;
    return ok("registration");
  }),
);

dashboard.post(
  "/admin/ui/sources/:id/verify",
  sameOrigin,
  requireAdminPage,
  checkCsrfToken,
  sourceAction(async (c, id) => {
    const status = await ledgerOf(c.env, id).checkIntegrity({ full: true });
    log("info", "full integrity re-verification from the dashboard", { requestId: c.var.requestId, source: id, running: status.running !== null });
    return ok("verify");
  }),
);

// ---- rendering -------------------------------------------------------------------------------

/** A loaded document as the pages show it (null when it is missing). */
function asListed<T>(id: string, loaded: Loaded<T>): Listed<T> | null {
  if (loaded.state === "valid") return { id, valid: true, config: loaded.config };
  return loaded.state === "invalid" ? { id, valid: false, errors: loaded.errors } : null;
}

async function pageContext(c: Context<AdminEnv>): Promise<PageContext> {
  const who = c.get("admin") as AdminIdentity | undefined; // unset on the sign-in pages
  const binding = who ? formBinding(who) : null;
  const actor = who ? c.var.actor : undefined;
  return {
    nonce: randomNonce(),
    csrf: binding === null ? null : await csrfToken(c.env, binding),
    now: Date.now(),
    who: actor ? { id: actor.id, role: actor.role } : null,
  };
}

/**
 * Sends a page with the dashboard's security headers: a CSP that allows only the nonce'd
 * stylesheet (no scripts at all), no framing, no caching, no referrer outside the origin.
 */
async function render(
  c: Context<AdminEnv>,
  build: (page: PageContext) => JSX.Element,
  status: 200 | 400 | 401 | 403 | 404 | 409 | 429 | 500 = 200,
): Promise<Response> {
  const page = await pageContext(c);
  c.header("Content-Security-Policy", `default-src 'none'; style-src 'nonce-${page.nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
  c.header("Cache-Control", "no-store");
  c.header("X-Content-Type-Options", "nosniff");
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "same-origin");
  return c.html(build(page), status);
}

function renderError(c: Context<AdminEnv>, status: 403 | 404 | 500, message: string): Promise<Response> {
  const title = status === 404 ? "Not found" : status === 403 ? "Refused" : "Error";
  const signedIn = c.get("admin") !== undefined;
  return render(
    c,
    (page) => (
      <Layout title={title} page={page} nav="none" signedIn={signedIn}>
        <h1>{title}</h1>
        <Notice tone={status === 404 ? "info" : "bad"}>{message}</Notice>
        <p>
          <a href="/admin/">Back to the overview</a>
        </p>
      </Layout>
    ),
    status,
  );
}

/** Where to go after signing in: a path under /admin on this origin, else the overview. */
export function safeNext(next: string | undefined): string {
  if (!next) return "/admin/";
  try {
    const base = "https://relay.invalid";
    const u = new URL(next, base);
    if (u.origin !== base || !(u.pathname === "/admin" || u.pathname.startsWith("/admin/")) || u.pathname.startsWith("/admin/login")) return "/admin/";
    return u.pathname + u.search;
  } catch {
    return "/admin/";
  }
}

function randomNonce(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}
