import { ledgerOf } from "../../service/stubs";
import type { TrendPoint } from "../../../lib/trends";
import { sumTrends } from "../charts";
import type { Context } from "hono";
import { Hono } from "hono";
import { alertsOf } from "../../../alerts/report";
import { type IssueView, MAX_ISSUES_LISTED } from "../../../alerts/types";
import { listConfigs } from "../../../config/store";
import { log } from "../../../lib/log";
import { type AdminEnv, requireAdminPage } from "../../../middleware/admin-auth";
import { pageRole } from "../roles";
import { summarizeSources, summarizeTargets } from "../../service/overview";
import { type PullSummary, summarizePull } from "../../service/pull";
import { OverviewPage } from "../pages/overview";
import { render } from "../render";

/** The overview, `/admin/` (and `/admin`; `/admin/ui` redirects to it): every source and target, the pull side, what needs attention. */
export const overview = new Hono<AdminEnv>();

const showOverview = async (c: Context<AdminEnv>) => {
  const [sources, targets, pull, openIssues] = await Promise.all([
    summarizeSources(c.env),
    summarizeTargets(c.env),
    summarizePullQuietly(c.env),
    unresolvedIssuesQuietly(c.env),
  ]);
  // Only the ledgers the summary read: an invalid id never opens one.
  const trends = await relayTrendsQuietly(
    c,
    sources.flatMap((s) => (s.stats ? [s.listed.id] : [])),
  );
  return render(c, (page) => <OverviewPage page={page} sources={sources} targets={targets} pull={pull} openIssues={openIssues} trends={trends} />);
};

/** The unresolved issues for "Needs attention", or null (logged) when the Alerts object fails to answer. */
async function unresolvedIssuesQuietly(env: AdminEnv["Bindings"]): Promise<IssueView[] | null> {
  try {
    return (await alertsOf(env).list({ limit: MAX_ISSUES_LISTED })).filter((i) => i.state !== "resolved");
  } catch (e) {
    log("error", "admin read failed", { what: "issues", error: e instanceof Error ? e.message : String(e) });
    return null;
  }
}

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

// Full paths: a mount prefix cannot give both `/admin` and `/admin/`.
overview.get("/admin", requireAdminPage, pageRole("viewer"), showOverview);
overview.get("/admin/", requireAdminPage, pageRole("viewer"), showOverview);
overview.get("/admin/ui", requireAdminPage, pageRole("viewer"), (c) => c.redirect("/admin/", 302));

/** Every source's deliveries per hour, summed, for the last 24 hours and 7 days; null when a ledger could not be read (the page still renders). */
async function relayTrendsQuietly(c: Context<AdminEnv>, sources: string[]): Promise<{ day: TrendPoint[]; week: TrendPoint[] } | null> {
  try {
    const [day, week] = await Promise.all(
      [24, 7 * 24].map(async (hours) => sumTrends(await Promise.all(sources.map((id) => ledgerOf(c.env, id).trends(hours))))),
    );
    return { day: day!, week: week! };
  } catch (e) {
    log("warn", "overview trends unreadable", { error: e instanceof Error ? e.message : String(e) });
    return null;
  }
}
