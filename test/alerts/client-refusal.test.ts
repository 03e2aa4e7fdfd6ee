import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { refusesClient, TOKEN_PATH } from "../../src/lib/client-refusal";
import { lookupErrorOf } from "../../src/pull/gateway";
import { issuesOf } from "../support/alerts";
import { admin } from "../support/helpers";
import { CP_CLIENT, newReconciledSource, useFakeCentrePoint, useTestHooks } from "../support/reconcile";

/**
 * centrepoint_auth_failed when CentrePoint refuses the relay's own API client: a 401 or 403 from
 * any endpoint, and the token endpoint's 400 (`invalid_client`, how OAuth2 answers a rotated client
 * secret), one rule (lib/client-refusal.ts) for every place that reports it.
 */

useTestHooks(["log", "warn"]);

describe("refusesClient", () => {
  it.each([
    [{ status: 400, endpoint: TOKEN_PATH }, true],
    [{ status: 401, endpoint: TOKEN_PATH }, true],
    [{ status: 401, endpoint: "/v3/Subjects/1" }, true],
    [{ status: 403, endpoint: "/v3/DataRetrieval/RawActivityRequests" }, true],
    [{ status: 400, endpoint: "/v3/DataRetrieval/RawActivityRequests" }, false],
    [{ status: 429, endpoint: TOKEN_PATH }, false],
    [{ status: 500, endpoint: TOKEN_PATH }, false],
    [{ status: null, endpoint: TOKEN_PATH }, false],
    [null, false],
  ] as const)("%o → %s", (answer, refused) => {
    expect(refusesClient(answer)).toBe(refused);
  });

  it("marks the enrichment and raw-data lookups' errors the same way", () => {
    expect(lookupErrorOf({ kind: "auth", status: 400, reason: "invalid_client", endpoint: TOKEN_PATH })).toMatchObject({ status: 400, refusedClient: true });
    expect(lookupErrorOf({ kind: "http", status: 403, reason: "Forbidden", endpoint: "/v3/Subjects/1" })).toMatchObject({ refusedClient: true });
    expect(lookupErrorOf({ kind: "http", status: 400, reason: "bad range", endpoint: "/v3/DataRetrieval/RawActivityRequests" })).toMatchObject({
      refusedClient: false,
    });
    expect(lookupErrorOf({ kind: "network", reason: "reset", endpoint: TOKEN_PATH })).toMatchObject({ status: null, refusedClient: false });
  });
});

describe("a rotated client secret", () => {
  it("a reconciliation refused at the token endpoint (400 invalid_client) opens centrepoint_auth_failed beside reconcile_failed", async () => {
    // CentrePoint holds another secret for the relay's client id than the relay has: the secret was rotated in the portal only.
    const { fake } = useFakeCentrePoint({ clients: [{ clientId: CP_CLIENT.clientId, clientSecret: "rotated-in-the-portal" }] });
    const source = await newReconciledSource();
    const res = await admin(`/sources/${source}/reconcile`, { method: "POST" });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: "upstream_error", upstream: { status: 400, endpoint: TOKEN_PATH } });
    expect(fake.requests().map((r) => r.path)).toContain(TOKEN_PATH);
    const issues = await issuesOf(`source:${source}`, 2);
    expect(issues.map((i) => [i.condition, i.severity]).sort()).toEqual([
      ["centrepoint_auth_failed", "critical"],
      ["reconcile_failed", "warning"],
    ]);
    expect(issues.find((i) => i.condition === "centrepoint_auth_failed")?.summary).toBe(`CentrePoint answered 400 to ${TOKEN_PATH}`);
  });
});
