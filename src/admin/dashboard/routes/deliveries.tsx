import type { Context } from "hono";
import { Hono } from "hono";
import { idSchema } from "../../../config/schemas";
import { listConfigs, loadConfig } from "../../../config/store";
import { log } from "../../../lib/log";
import { ok, type Result } from "../../../lib/result";
import { type AdminEnv, requireAdminPage } from "../../../middleware/admin-auth";
import { deliveryListQuery } from "../../routes/deliveries.schemas";
import { findDeliveryById, getDeliveryDetail, type ListedDelivery, listDeliveries } from "../../service/deliveries";
import { previewDelivery } from "../../service/preview";
import { releaseEnrichment, retryEnrichment } from "../../service/pull";
import type { Refusal } from "../../service/reconcile";
import { replayDelivery } from "../../service/replay";
import { issuesToFields } from "../../validation";
import { audit, ids } from "../../../audit/audit";
import { formPost } from "../csrf";
import { entriesAbout } from "./audit";
import { formReason, pageRole } from "../roles";
import { plural, utcInputToIso } from "../format";
import type { Flash } from "../layout";
import { DeliveriesPage, type DeliveryFilters, deliveryHref } from "../pages/deliveries";
import { DeliveryPage, PreviewPage } from "../pages/delivery";
import { PAGE_SIZE, render, renderError } from "../render";

/**
 * `/admin/ui/deliveries`: the search over every source's deliveries, a delivery's page (targets,
 * attempts, enrichment) with its replay and enrichment actions, and a target's preview of it.
 */
export const deliveries = new Hono<AdminEnv>();

deliveries.get("/", requireAdminPage, pageRole("viewer"), async (c) => {
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

// The page shows the body and the enrichment (they may hold patient-related data): operator and up, each view a `delivery.read` entry.
deliveries.get("/:source/:id", requireAdminPage, pageRole("operator"), async (c) => {
  const { source, id } = c.req.param();
  const d = idSchema.safeParse(source).success ? await getDeliveryDetail(c.env, source, id) : null;
  if (!d) return renderError(c, 404, `No delivery “${id}” in source “${source}”.`);
  await audit(c, { action: "delivery.read", object: { source, delivery: id } });
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
  const trail = await entriesAbout(c, `delivery:${id}`);
  return render(c, (page) => <DeliveryPage page={page} d={d} notice={notice} trail={trail} />);
});

deliveries.get("/:source/:id/preview", requireAdminPage, pageRole("operator"), async (c) => {
  const { source, id } = c.req.param();
  const target = c.req.query("target") ?? "";
  if (!idSchema.safeParse(source).success || !idSchema.safeParse(target).success) return renderError(c, 404, "No such source or target.");
  const loaded = await loadConfig(c.env.CONFIG, "target", target, 0);
  if (loaded.state !== "valid") return renderError(c, 404, `Target “${target}” is missing or invalid; fix its document to preview it.`);
  const preview = await previewDelivery(c.env, target, loaded.config, source, id);
  if (!preview.ok) return renderError(c, 404, preview.error);
  await audit(c, { action: "delivery.read", object: { source, delivery: id, target } });
  return render(c, (page) => <PreviewPage page={page} source={source} deliveryId={id} target={target} preview={preview.value} />);
});

deliveries.post("/:source/:id/replay", ...formPost, pageRole("operator"), async (c) => {
  const { source, id } = c.req.param();
  if (!idSchema.safeParse(source).success) return renderError(c, 404, "No such source.");
  const form = await c.req.parseBody();
  const target = typeof form.target === "string" && idSchema.safeParse(form.target).success ? form.target : undefined;
  await audit(c, { action: "delivery.replay", object: ids({ source, delivery: id, target }), reason: await formReason(c) });
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
    await audit(c, { action: "delivery.enrichment-retry", object: { source, delivery: id }, reason: await formReason(c) });
    const job = await retryEnrichment(c.env, source, id);
    return job.ok ? ok("done=enrichment-retry") : job;
  },
  release: async (c, source, id) => {
    await audit(c, {
      action: "delivery.release",
      object: { source, delivery: id },
      reason: await formReason(c),
      reasonRequired: "Releasing held events needs a reason",
    });
    const released = await releaseEnrichment(c.env, source, id);
    return released.ok ? ok(`done=released&released=${released.value.released}`) : released;
  },
};

for (const [name, act] of Object.entries(ENRICHMENT_ACTIONS)) {
  deliveries.post(
    `/:source/:id/enrichment/${name}`,
    ...formPost,
    pageRole("operator"),
    enrichmentAction(async (c, source, id) => {
      const done = await act(c, source, id);
      if (done.ok) log("info", `enrichment ${name} from the dashboard`, { requestId: c.var.requestId, source, deliveryId: id, done: done.value });
      return done;
    }),
  );
}
