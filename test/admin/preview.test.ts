import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearConfigCache } from "../../src/config/store";
import { uploadBody } from "../../harness/centrepoint/payloads";
import { admin, freshId, postWebhook, putSource, putTarget } from "../support/helpers";
import { fakeTarget } from "../support/outbox";
import { get, signIn } from "../support/session";

/** TEST_REDCAP_TOKEN and TEST_TARGET_TOKEN of vitest.config.ts. */
const SECRET_VALUES = ["5A1B9C3D7E2F40618293A4B5C6D7E8F9", "test-target-token", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"];

const TRANSFORM = {
  contentType: "application/x-www-form-urlencoded",
  body: '{"token": $secret("TEST_REDCAP_TOKEN"), "content": "record", "data": [{"record_id": delivery.body.subjectId, "upload": delivery.body.uploadId}]}',
  secrets: ["TEST_REDCAP_TOKEN"],
};

let source: string;
let target: string;
let deliveryId: string;
/** Every fetch of the file goes to a fake; the targets are disabled, so their outboxes hold what the ledger hands them. */
let sent: ReturnType<typeof fakeTarget>;

beforeEach(async () => {
  clearConfigCache();
  vi.spyOn(console, "log").mockImplementation(() => undefined);
  sent = fakeTarget();
  source = freshId("s");
  target = freshId("t");
  await putSource(source);
  await putTarget(target, {
    url: "https://edc.example/redcap/api/",
    enabled: false,
    sources: [source],
    auth: { type: "bearer", tokenEnv: "TEST_TARGET_TOKEN" },
    signing: { secretEnv: "TEST_SIGNING_SECRET" },
    transform: TRANSFORM,
  });
  deliveryId = crypto.randomUUID();
  expect((await postWebhook(source, { deliveryId, body: uploadBody({ subjectId: "SITE-A-001" }) })).status).toBe(200);
});

afterEach(() => vi.restoreAllMocks());

const preview = (body: unknown, id = target) => admin(`/targets/${id}/preview`, { method: "POST", body: JSON.stringify(body) });

describe("POST /admin/targets/:id/preview", () => {
  it("shows the request the target would get, secrets redacted, and sends nothing", async () => {
    const res = await preview({ source, deliveryId });
    expect(res.status).toBe(200);
    const got = (await res.json()) as { wanted: boolean; request: { method: string; url: string; headers: Record<string, string>; body: string } };
    expect(got.wanted).toBe(true);
    expect(got.request).toMatchObject({ method: "POST", url: "https://edc.example/redcap/api/" });
    expect(got.request.headers).toMatchObject({
      "content-type": "application/x-www-form-urlencoded",
      authorization: "[redacted]",
      "webhook-signature": "[redacted]",
      "webhook-id": deliveryId,
    });
    const form = new URLSearchParams(got.request.body);
    expect(form.get("token")).toBe("[secret TEST_REDCAP_TOKEN]");
    expect(JSON.parse(form.get("data")!)).toEqual([{ record_id: "SITE-A-001", upload: "85045" }]);
    const text = JSON.stringify(got);
    for (const secret of SECRET_VALUES) expect(text).not.toContain(secret);
    expect(sent.sent).toHaveLength(0);
  });

  it("says when the filter does not want the delivery, and shows an expression's error", async () => {
    await putTarget(target, { url: "https://edc.example/hooks", enabled: false, sources: [source], filter: "delivery.body.subjectId ~> /^SITE-B-/" });
    expect(await (await preview({ source, deliveryId })).json()).toEqual({ wanted: false, request: null, error: null });
    await putTarget(target, { url: "https://edc.example/hooks", enabled: false, sources: [source], transform: { body: '$error("bad field")' } });
    expect(await (await preview({ source, deliveryId })).json()).toEqual({ wanted: true, request: null, error: expect.stringContaining("bad field") });
  });

  it("answers 404 for an unknown delivery or target and 400 for a bad body", async () => {
    expect((await preview({ source, deliveryId: "nope" })).status).toBe(404);
    expect((await preview({ source, deliveryId }, "no-such-target")).status).toBe(404);
    expect((await preview({ source })).status).toBe(400);
  });
});

describe("PUT /admin/targets/:id?dryRun=1", () => {
  it("previews the new document against the latest matching delivery without saving it", async () => {
    const doc = { url: "https://edc.example/hooks", enabled: false, sources: [source], transform: { body: '{"who": delivery.body.subjectId}' } };
    const res = await admin(`/targets/${target}?dryRun=1`, { method: "PUT", body: JSON.stringify(doc) });
    expect(res.status).toBe(200);
    const got = (await res.json()) as { dryRun: boolean; previews: { source: string; deliveryId: string; request: { body: string } }[] };
    expect(got.dryRun).toBe(true);
    expect(got.previews).toEqual([
      expect.objectContaining({ source, deliveryId, wanted: true, request: expect.objectContaining({ body: '{"who":"SITE-A-001"}' }) }),
    ]);
    const stored = (await (await admin(`/targets/${target}`)).json()) as { config: { transform: typeof TRANSFORM } };
    expect(stored.config.transform.body).toBe(TRANSFORM.body);
  });

  it("answers the expression's error as a field-level 400 and saves nothing", async () => {
    const res = await admin(`/targets/${target}?dryRun=1`, {
      method: "PUT",
      body: JSON.stringify({ url: "https://edc.example/hooks", transform: { body: '{"who": delivery.body.subjectId' } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { fields: { path: string; message: string }[] }).fields).toEqual([
      expect.objectContaining({ path: "transform.body", message: expect.stringMatching(/position \d+/) }),
    ]);
  });
});

describe("dashboard preview", () => {
  it("links a Preview per target from the delivery page and shows the request without secret values", async () => {
    const cookie = await signIn();
    const page = await (await get(`/admin/ui/deliveries/${source}/${deliveryId}`, cookie)).text();
    const href = `/admin/ui/deliveries/${source}/${deliveryId}/preview?target=${target}`;
    expect(page).toContain(`href="${href}"`);
    const res = await get(href, cookie);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("POST https://edc.example/redcap/api/");
    expect(html).toContain("token=%5Bsecret+TEST_REDCAP_TOKEN%5D");
    for (const secret of SECRET_VALUES) expect(html).not.toContain(secret);
    expect(sent.sent).toHaveLength(0);
  });

  it("shows the target's expressions on its page", async () => {
    const html = await (await get(`/admin/ui/targets/${target}`, await signIn())).text();
    expect(html).toContain("application/x-www-form-urlencoded");
    expect(html).toContain("$secret(&quot;TEST_REDCAP_TOKEN&quot;)");
  });
});
