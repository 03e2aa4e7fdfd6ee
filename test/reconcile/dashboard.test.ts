import { describe, expect, it } from "vitest";
import { admin, freshId, putSource } from "../support/helpers";
import { csrfOf, get, postForm, signIn } from "../support/session";
import { historyDelivery, newReconciledSource, reconcilerOf, useFakeCentrePoint, useTestHooks } from "../support/reconcile";

/** Reconciliation and the registration check in the dashboard (src/admin/dashboard/pages/reconciliation.tsx, overview, deliveries). */

useTestHooks();

/** Signs in and opens a page; returns the session cookie and the page's HTML (apostrophes unescaped, for readable expectations). */
async function open(path: string, cookie?: string): Promise<{ cookie: string; html: string; status: number }> {
  const session = cookie ?? (await signIn());
  const res = await get(path, session);
  return { cookie: session, html: (await res.text()).replaceAll("&#39;", "'"), status: res.status };
}

/** Posts a source page's form with the page's CSRF token; returns the redirect target. */
async function press(source: string, action: "reconcile" | "registration", page: { cookie: string; html: string }): Promise<string | null> {
  const res = await postForm(`/admin/ui/sources/${source}/${action}`, { _csrf: csrfOf(page.html) }, { cookie: page.cookie });
  expect(res.status).toBe(303);
  return res.headers.get("location");
}

describe("the source page", () => {
  it("shows the buttons without starting anything: a read-only page never runs a reconciliation", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    const page = await open(`/admin/ui/sources/${source}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain(`action="/admin/ui/sources/${source}/reconcile"`);
    expect(page.html).toContain(`action="/admin/ui/sources/${source}/registration"`);
    expect(page.html).toContain("No run yet.");
    expect(page.html).toContain("Not checked yet");
    expect(fake.requests()).toEqual([]);
    expect(await reconcilerOf(source).reports(5)).toEqual([]);
  });

  it("runs a reconciliation from its button and shows the report, the backfilled deliveries and the registration's problems", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    const lost = historyDelivery(fake, 1, { responseCode: 401 });
    fake.setWebhook({ studyId: "189", webhookId: "74", url: `https://relay.example.org/webhooks/${source}`, isDisabled: true });
    const before = await open(`/admin/ui/sources/${source}`);
    expect(await press(source, "reconcile", before)).toBe(`/admin/ui/sources/${source}?done=reconciled`);
    const { html } = await open(`/admin/ui/sources/${source}?done=reconciled`, before.cookie);
    expect(html).toContain("Reconciliation ran; its report is below.");
    expect(html).toContain(`/admin/ui/deliveries/${source}/${lost}`);
    expect(html).toContain(`/admin/ui/deliveries?source=${source}&amp;provenance=centrepoint-history`);
    expect(html).toContain("The webhook is disabled in CentrePoint: it sends nothing until it is enabled again in the CentrePoint portal.");
  });

  it("shows the progress of a run that continues in the background", async () => {
    const { fake } = useFakeCentrePoint({ maxPageSize: 1 });
    const source = await newReconciledSource();
    for (let n = 0; n < 12; n++) historyDelivery(fake, n, { responseCode: 401 });
    const before = await open(`/admin/ui/sources/${source}`);
    expect(await press(source, "reconcile", before)).toBe(`/admin/ui/sources/${source}?done=reconciling`);
    const { html } = await open(`/admin/ui/sources/${source}`, before.cookie);
    expect(html).toMatch(/Running since .*: 10 pages and 10 history rows read so far, 10 deliveries backfilled\. It continues in the background/s);
    expect(html).toContain("Continue now");
  });

  it("refuses the button's POST without the session's CSRF token", async () => {
    useFakeCentrePoint();
    const source = await newReconciledSource();
    const cookie = await signIn();
    const res = await postForm(`/admin/ui/sources/${source}/reconcile`, { _csrf: "forged" }, { cookie });
    expect(res.status).toBe(403);
    expect(await reconcilerOf(source).reports(5)).toEqual([]);
  });

  it("shows the refusal for a source without a centrepoint block, and explains the block", async () => {
    const source = freshId();
    await putSource(source);
    const page = await open(`/admin/ui/sources/${source}`);
    expect(page.html).toContain("Not configured. Add a <code>centrepoint</code> block");
    const res = await postForm(`/admin/ui/sources/${source}/reconcile`, { _csrf: csrfOf(page.html) }, { cookie: page.cookie });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("has no centrepoint block");
  });
});

describe("the overview", () => {
  it("lists a failed run, a run that backfilled, and registration problems under Needs attention", async () => {
    const { fake } = useFakeCentrePoint();
    const backfilling = await newReconciledSource();
    historyDelivery(fake, 1, { responseCode: 401 });
    await admin(`/sources/${backfilling}/reconcile`, { method: "POST" });
    const failing = await newReconciledSource({}, { webhookId: 999 });
    await admin(`/sources/${failing}/reconcile`, { method: "POST" });
    const { html } = await open("/admin/");
    expect(html).toContain(`Source ${failing}: the last reconciliation with CentrePoint's history failed: CentrePoint answered HTTP 404`);
    expect(html).toContain(`Source ${backfilling}: the last reconciliation backfilled 1 delivery that never arrived as webhooks`);
    expect(html).toContain(`Source ${backfilling}: CentrePoint sends this webhook to https://relay.example.invalid/centrepoint/189, not to this relay`);
    expect(html).toContain(`Source ${failing}: the webhook registration could not be checked`);
  });
});

describe("the deliveries page", () => {
  it("filters by provenance and marks backfilled deliveries", async () => {
    const { fake } = useFakeCentrePoint();
    const source = await newReconciledSource();
    const lost = historyDelivery(fake, 1, { responseCode: 401 });
    await admin(`/sources/${source}/reconcile`, { method: "POST" });
    const { html, cookie } = await open(`/admin/ui/deliveries?source=${source}&provenance=centrepoint-history`);
    expect(html).toContain(lost);
    expect(html).toContain('<option value="centrepoint-history" selected="">');
    expect(html).toContain(">backfilled</span>");
    const pushedOnly = await open(`/admin/ui/deliveries?source=${source}&provenance=webhook`, cookie);
    expect(pushedOnly.html).not.toContain(lost);
    const detail = await open(`/admin/ui/deliveries/${source}/${lost}`, cookie);
    expect(detail.html).toContain("read from CentrePoint's delivery history by a reconciliation");
  });
});
