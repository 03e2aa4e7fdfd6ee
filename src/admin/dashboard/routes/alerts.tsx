import { Hono } from "hono";
import { isValidId } from "../../../config/schemas";
import { listConfigs } from "../../../config/store";
import { log } from "../../../lib/log";
import { type AdminEnv, requireAdminPage } from "../../../middleware/admin-auth";
import { channelOutboxName } from "../../../outbox/types";
import { outboxOf } from "../../service/stubs";
import { AlertsPage, type ChannelSummary } from "../pages/alerts";
import { render } from "../render";
import { pageRole } from "../roles";

/** `/admin/ui/alerts`: the alert channels and their outboxes' health; a failing channel is shown first. */
export const alerts = new Hono<AdminEnv>();

alerts.get("/", requireAdminPage, pageRole("viewer"), async (c) => {
  const listed = (await listConfigs(c.env.CONFIG, "alert", 0)).filter((l) => isValidId(l.id));
  const channels: ChannelSummary[] = await Promise.all(
    listed.map(async (l) => {
      try {
        return { listed: l, health: await outboxOf(c.env, channelOutboxName(l.id)).health() };
      } catch (e) {
        log("error", "admin read failed", { what: "alert channel", channel: l.id, error: e instanceof Error ? e.message : String(e) });
        return { listed: l, health: null };
      }
    }),
  );
  return render(c, (page) => <AlertsPage page={page} channels={channels} />);
});
