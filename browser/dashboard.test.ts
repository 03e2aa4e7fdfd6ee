/**
 * The operator dashboard in a real browser: the relay runs under `wrangler dev` (workerd, storage
 * in a temp dir), two harness targets on 127.0.0.1 play the EDC and a warehouse, Debian's chromium is
 * driven by playwright-core. Signs in, finds a delivery by id, replays it, checks that the target
 * got it twice with one webhook-id, and takes screenshots (kept in docs/screenshots/ with
 * UPDATE_SCREENSHOTS=1). A local stand-in for Cloudflare Access (harness/fake-access.ts) signs in
 * a viewer and an admin through the Access cookie.
 *
 * Run: `npm run test:browser` (needs /usr/bin/chromium: `apt-get install -y chromium`).
 * All traffic stays on 127.0.0.1; every process started here is stopped by its PID, also on failure.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { signBody } from "../harness/centrepoint/signing.ts";
import { type AdminClient, adminClient, http, type Reply } from "../harness/http/client.ts";
import { makeTempDir, removeTempDir } from "../harness/process/groups.ts";
import { type DevServer, PROJECT_ROOT as ROOT, startDev } from "../harness/process/wrangler-dev.ts";
import { type Arrival, startTarget, type Target } from "../harness/targets/controllable-target.ts";
import { type FakeAccessServer, startFakeAccess } from "../harness/fake-access.ts";
import { waitFor } from "../harness/wait.ts";

/** Screenshots go to docs/screenshots/ with UPDATE_SCREENSHOTS=1 (`npm run screenshots`), else to a temp dir. */
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? join(ROOT, "docs", "screenshots") : mkdtempSync(join(tmpdir(), "relay-screenshots-"));
const GOLDEN = join(ROOT, "test", "providers", "centrepoint", "golden");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Dev-only values handed to `wrangler dev` with --var; never used anywhere real. */
const ADMIN_TOKEN = `browser-test-admin-${randomUUID()}`;
const HMAC_SECRET = "browser-test-hmac-secret";
const SOURCE = "study-189";

/** Upper bounds of every wait, ms. */
const STARTUP_MS = 90_000;
const SETTLE_MS = 30_000;

let tmp = "";
let relay: DevServer | null = null;
/** The study's EDC (answers 200) and a warehouse in maintenance (answers 503). */
let edc: Target | null = null;
let warehouse: Target | null = null;
let browser: Browser | null = null;
let access: FakeAccessServer | null = null;
let base = "";
let admin: AdminClient;

before(async () => {
  tmp = makeTempDir("relay-browser-");
  edc = await startTarget("edc-main");
  access = await startFakeAccess();
  warehouse = await startTarget("warehouse", { kind: "status", status: 503 });
  relay = await startDev({
    configPath: join(ROOT, "wrangler.toml"),
    persistTo: join(tmp, "state"),
    workDir: tmp,
    vars: { ADMIN_TOKEN, ALLOW_HTTP_TARGETS: "true", TEST_HMAC_SECRET: HMAC_SECRET, ACCESS_TEAM_DOMAIN: access.url, ACCESS_AUD: access.audience },
    readyTimeoutMs: STARTUP_MS,
  });
  base = relay.url;
  admin = adminClient(base, ADMIN_TOKEN);
});

after(async () => {
  await browser?.close().catch(() => undefined);
  if (relay) await relay.stop();
  await edc?.close();
  await warehouse?.close();
  if (tmp) removeTempDir(tmp);
  await access?.close();
  if (process.env.UPDATE_SCREENSHOTS !== "1") await rm(SCREENSHOTS, { recursive: true, force: true });
});

test("an operator finds a delivery, replays it, and the target gets it again with the same webhook-id", { timeout: 240_000 }, async () => {
  // Configuration through the admin API (bearer), as an integration engineer would.
  await adminPut(`/sources/${SOURCE}`, {
    description: "CentrePoint study 189",
    auth: { type: "hmac", secretEnv: "TEST_HMAC_SECRET" },
    allowedIps: ["127.0.0.1", "::1"],
  });
  await adminPut("/targets/edc-main", { url: edc!.url, description: "Study EDC" });
  await adminPut("/targets/warehouse", {
    url: warehouse!.url,
    description: "Data warehouse (down in this test)",
    events: ["raw_processing.*"],
    retry: { maxAttempts: 1 },
  });

  // CentrePoint deliveries: the one we follow, and a few others for a realistic list.
  const deliveryId = randomUUID();
  await postWebhook(
    "upload",
    JSON.stringify({
      status: "completed",
      firstEpochUTC: "2026-03-02T08:00:00.0000000",
      lastEpochUTC: "2026-03-09T07:59:00.0000000",
      uploadId: "85045",
      subjectId: "44732",
      studyId: "189",
    }),
    deliveryId,
  );
  await postWebhook("raw_processing_complete", await goldenBody("raw-processing-complete.json"), randomUUID());
  await postWebhook("daily_statistics_complete", await goldenBody("daily-statistics-complete.json"), randomUUID());
  await postWebhook("upload", await goldenBody("non-json-body.json"), randomUUID());
  const code = randomUUID();
  const handshake = await postWebhook("validation", JSON.stringify({ ValidationCode: code, WebhookId: 23 }), randomUUID(), { "x-actigraph-hook-secret": code });
  assert.equal(handshake.headers["x-actigraph-hook-secret"], code);
  await waitUntil("edc-main to receive the upload", SETTLE_MS, async () => hooksFor(deliveryId).length === 1);
  await waitUntil(
    "warehouse to give up on its delivery",
    SETTLE_MS,
    async () => (await adminGet<{ counts: { dead: number } }>("/targets/warehouse/health")).counts.dead === 1,
  );
  // The overview shows the stored integrity report and never checks itself: run the check, as the daily cron or an operator would.
  assert.equal((await adminGet<{ ok: boolean | null; checked: number }>(`/sources/${SOURCE}/integrity`)).ok, true);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await mkdir(SCREENSHOTS, { recursive: true });

  // Signed out: the dashboard sends us to the sign-in page, which sets an HttpOnly cookie.
  await page.goto(`${base}/admin/`);
  assert.match(new URL(page.url()).pathname, /^\/admin\/login$/);
  await page.screenshot({ path: join(SCREENSHOTS, "login.png") });
  await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/admin/`);
  const cookies = await context.cookies(`${base}/admin/`);
  const session = cookies.find((c) => c.name === "__Secure-relay_admin");
  assert.ok(session, "session cookie set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.equal(session.path, "/admin");
  assert.ok(!session.value.includes(ADMIN_TOKEN));

  // Overview: both targets, the dead letter on the warehouse, the source's intact ledger.
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  assert.ok(await page.getByRole("link", { name: /warehouse: 1 dead delivery waiting for replay/ }).isVisible());
  assert.ok(await page.getByText("intact").first().isVisible());
  await page.screenshot({ path: join(SCREENSHOTS, "overview.png"), fullPage: true });

  // Deliveries list, then a search by delivery id opens the delivery.
  await page.getByRole("link", { name: "Deliveries", exact: true }).click();
  await page.getByRole("heading", { name: "Deliveries", level: 1 }).waitFor();
  assert.ok(await page.getByRole("link", { name: deliveryId }).isVisible());
  await page.screenshot({ path: join(SCREENSHOTS, "deliveries.png"), fullPage: true });
  await page.getByLabel("Search", { exact: true }).fill(deliveryId);
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(`${base}/admin/ui/deliveries/${SOURCE}/${deliveryId}`);
  await page.getByRole("heading", { name: deliveryId }).waitFor();
  assert.equal(await successCount(page, "edc-main"), 1);

  // Replay to every target that has it: a new attempt appears, the EDC receives the event again.
  await page.getByRole("button", { name: "Replay to all targets" }).click();
  await page.getByText("Replay scheduled for 1 target").waitFor();
  await waitUntil("a second successful attempt on the page", SETTLE_MS, async () => {
    await page.reload();
    return (await successCount(page, "edc-main")) === 2;
  });
  const hooks = hooksFor(deliveryId);
  assert.equal(hooks.length, 2, "the EDC received the event twice");
  assert.equal(hooks[0]!.webhookId, deliveryId);
  assert.equal(hooks[1]!.webhookId, hooks[0]!.webhookId, "the replay keeps the webhook-id, so the EDC can dedupe");
  await page.screenshot({ path: join(SCREENSHOTS, "delivery.png"), fullPage: true });

  // The warehouse's page lists its dead letter.
  await page.goto(`${base}/admin/ui/targets/warehouse`);
  await page.getByRole("heading", { name: /Target warehouse/ }).waitFor();
  assert.ok(await page.getByRole("button", { name: "Replay 1 dead delivery" }).isVisible());
  await page.screenshot({ path: join(SCREENSHOTS, "target.png"), fullPage: true });

  // The source's page starts a full re-verification on request, shows its report, and lists the handshake.
  await page.goto(`${base}/admin/ui/sources/${SOURCE}`);
  await page.getByRole("button", { name: "Re-verify the whole chain" }).click();
  await page.getByText("Intact: 4 records checked (full re-verification").waitFor();
  assert.ok(await page.getByRole("cell", { name: "echoed" }).isVisible());
  await page.screenshot({ path: join(SCREENSHOTS, "source.png"), fullPage: true });

  // The People page opens for the admin, with its forms.
  await page.goto(`${base}/admin/ui/people`);
  await page.getByRole("heading", { name: "People", level: 1 }).waitFor();
  assert.ok(await page.getByRole("button", { name: "Create token" }).isVisible());
  await page.screenshot({ path: join(SCREENSHOTS, "people.png"), fullPage: true });

  // No page ever shows the admin token or a secret value.
  for (const path of [
    "/admin/",
    "/admin/ui/deliveries",
    `/admin/ui/deliveries/${SOURCE}/${deliveryId}`,
    "/admin/ui/targets/edc-main",
    `/admin/ui/sources/${SOURCE}?done=verify`,
    "/admin/ui/people",
  ]) {
    await page.goto(`${base}${path}`);
    const html = await page.content();
    assert.ok(!html.includes(ADMIN_TOKEN), `${path} shows the admin token`);
    assert.ok(!html.includes(HMAC_SECRET), `${path} shows the HMAC secret`);
  }
});

test("people signed in through Cloudflare Access see who they are and their role: a viewer and an admin", { timeout: 120_000 }, async () => {
  await adminPut("/operators", { roles: { "vic@site.org": "viewer", "alice@site.org": "admin" } });
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"] });
  const host = new URL(base).hostname;
  for (const [email, role] of [
    ["vic@site.org", "viewer"],
    ["alice@site.org", "admin"],
  ] as const) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    await context.addCookies([{ name: "CF_Authorization", value: await access!.mint({ email }), domain: host, path: "/", httpOnly: true, sameSite: "Lax" }]);
    const page = await context.newPage();
    await page.goto(`${base}/admin/`);
    assert.equal(new URL(page.url()).pathname, "/admin/", `${email} is signed in without the admin-token form`);
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    assert.ok(await page.getByText(`Signed in as ${email} · ${role}`).isVisible());
    assert.ok(await page.getByRole("button", { name: "Sign out" }).isVisible());
    await context.close();
  }
  // Nobody else: a verified person without a role is refused, by name.
  const res = await fetch(`${base}/admin/`, {
    headers: { cookie: `CF_Authorization=${await access!.mint({ email: "mallory@site.org" })}` },
    redirect: "manual",
  });
  assert.equal(res.status, 403);
  assert.match(await res.text(), /mallory@site\.org/);
});

/** Attempts shown as successful in one target's timeline on a delivery page. */
async function successCount(page: Page, target: string): Promise<number> {
  return page
    .locator("article", { has: page.getByRole("heading", { name: target }) })
    .locator(".badge.ok", { hasText: /^success$/ })
    .count();
}

/** Requests the EDC received for a delivery id. */
function hooksFor(deliveryId: string): Arrival[] {
  return edc!.arrivals.filter((a) => a.webhookId === deliveryId);
}

/** A golden CentrePoint body (test/providers/centrepoint/golden), as raw text. */
async function goldenBody(file: string): Promise<string> {
  const golden = JSON.parse(await readFile(join(GOLDEN, file), "utf8")) as { body?: unknown; bodyText?: string };
  return golden.bodyText ?? JSON.stringify(golden.body);
}

/** Posts a webhook signed as CentrePoint does: base64 HMAC-SHA256 of the raw body. */
async function postWebhook(event: string, body: string, deliveryId: string, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await http(`${base}/webhooks/${SOURCE}`, {
    method: "POST",
    headers: {
      "content-type": "application/json; charset=utf-8",
      "user-agent": "ActiGraph-Hookshot/1.0",
      "x-actigraph-event": event,
      "x-actigraph-delivery": deliveryId,
      "x-actigraph-signature": signBody(HMAC_SECRET, body),
      ...headers,
    },
    body,
  });
  assert.equal(res.status, 200, `webhook answered ${res.status}: ${res.text}`);
  return res;
}

async function adminPut(path: string, doc: unknown): Promise<void> {
  const res = await admin.call("PUT", path, doc);
  assert.ok(res.status >= 200 && res.status < 300, `PUT ${path} answered ${res.status}: ${res.text}`);
}

async function adminGet<T>(path: string): Promise<T> {
  const res = await admin.call("GET", path);
  assert.ok(res.status >= 200 && res.status < 300, `GET ${path} answered ${res.status}`);
  return res.json as T;
}

/** Polls `check` every 250 ms until it is true; fails at once if it throws, and after `ms` with the relay's output. */
async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  await waitFor(what, check, {
    timeoutMs: ms,
    intervalMs: 250,
    rethrow: true,
    detail: () => `\n--- wrangler dev output ---\n${relay?.output().slice(-20_000) ?? ""}`,
  });
}
