import type { Context } from "hono";
import { Hono } from "hono";
import { idSchema } from "../../../config/schemas";
import { configExists, loadConfig } from "../../../config/store";
import { log } from "../../../lib/log";
import { type AdminEnv, requireAdminPage } from "../../../middleware/admin-auth";
import { MAX_REPLAY } from "../../../outbox/views";
import { audit } from "../../../audit/audit";
import { documentChange } from "../../reasons";
import { setTargetEnabled } from "../../service/documents";
import { replayMany, resumeTarget } from "../../service/replay";
import { outboxOf } from "../../service/stubs";
import { formPost } from "../csrf";
import { entriesAbout } from "./audit";
import { formReason, pageRole } from "../roles";
import type { Flash } from "../layout";
import { TARGET_TABS, TargetPage, type TargetTab } from "../pages/target";
import { asListed, PAGE_SIZE, render, renderError } from "../render";

/** `/admin/ui/targets/:id`: a target's outbox by state, and its resume, replay-dead, enable and disable actions. */
export const targets = new Hono<AdminEnv>();

async function renderTarget(c: Context<AdminEnv>, id: string, flash: Flash, status: 200 | 400 | 404 = 200) {
  // KV first: an unknown id never creates an outbox.
  const loaded = await loadConfig(c.env.CONFIG, "target", id, 0);
  if (loaded.state === "missing") return renderError(c, 404, `No target “${id}”.`);
  const outbox = outboxOf(c.env, id);
  const [health, day, week] = await Promise.all([outbox.health(), outbox.trends(24), outbox.trends(7 * 24)]);
  const listed = asListed(id, loaded);
  const asked = c.req.query("state");
  const tab: TargetTab = TARGET_TABS.includes(asked as TargetTab) ? (asked as TargetTab) : health.counts.dead > 0 ? "dead" : "all";
  const cursor = /^\d{1,15}$/.test(c.req.query("cursor") ?? "") ? c.req.query("cursor") : undefined;
  const listing = await outbox.list({ state: tab === "all" ? undefined : tab, limit: PAGE_SIZE, cursor });
  // The pending tab shows rows being sent too.
  const items = tab === "pending" && !cursor ? [...(await outbox.list({ state: "delivering", limit: PAGE_SIZE })).items, ...listing.items] : listing.items;
  const trail = await entriesAbout(c, `target:${id}`);
  return render(
    c,
    (page) => (
      <TargetPage
        page={page}
        id={id}
        listed={listed}
        health={health}
        tab={tab}
        items={items}
        next={listing.cursor}
        notice={flash}
        trail={trail}
        trends={{ day, week }}
      />
    ),
    status,
  );
}

targets.get("/:id", requireAdminPage, pageRole("viewer"), async (c) => {
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

targets.post(
  "/:id/resume",
  ...formPost,
  pageRole("operator"),
  targetAction(async (c, id) => {
    await audit(c, { action: "target.resume", object: { target: id }, reason: await formReason(c) });
    const { resumed } = (await resumeTarget(c.env, id)) ?? { resumed: 0 };
    log("info", "target resumed from the dashboard", { requestId: c.var.requestId, target: id, resumed });
    return `done=resumed&n=${resumed}`;
  }),
);

targets.post(
  "/:id/replay-dead",
  ...formPost,
  pageRole("operator"),
  targetAction(async (c, id) => {
    await audit(c, {
      action: "delivery.replay-bulk",
      object: { target: id },
      after: { target: id, state: "dead", limit: MAX_REPLAY },
      reason: await formReason(c),
      reasonRequired: "A bulk replay needs a reason",
    });
    const { replayed, more } = await replayMany(c.env, { target: id, state: "dead", limit: MAX_REPLAY });
    log("info", "dead deliveries replayed from the dashboard", { requestId: c.var.requestId, target: id, replayed, more });
    return `done=replayed&n=${replayed}&more=${more ? 1 : 0}`;
  }),
);

for (const enabled of [true, false]) {
  targets.post(
    `/:id/${enabled ? "enable" : "disable"}`,
    ...formPost,
    pageRole("admin"),
    targetAction(async (c, id) => {
      const reason = await formReason(c);
      const r = await setTargetEnabled(c.env, id, enabled, (change) =>
        audit(c, { action: "target.put", object: { target: id }, reason, ...documentChange("target", change) }),
      );
      return r.ok ? `done=${enabled ? "enabled" : "disabled"}` : { error: r.error };
    }),
  );
}
