import { describe, expect, it } from "vitest";
import { admin } from "../support/helpers";

describe("OpenAPI document", () => {
  it("is served behind the admin token", async () => {
    const { exports } = await import("cloudflare:workers");
    expect((await exports.default.fetch("http://relay.test/admin/openapi.json")).status).toBe(401);
  });

  it("describes the admin routes with the schemas that validate them", async () => {
    const doc = (await (await admin("/openapi.json")).json()) as { openapi: string; paths: Record<string, Record<string, any>> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/admin/sources",
        "/admin/sources/{id}",
        "/admin/targets/{id}",
        "/admin/deliveries",
        "/admin/deliveries/{source}/{id}",
        "/admin/sources/{id}/integrity",
        "/admin/sources/{id}/export",
        "/admin/sources/{id}/lifecycle",
        "/admin/replay",
        "/admin/deliveries/{source}/{id}/replay",
        "/admin/targets/{id}/dead",
        "/admin/targets/{id}/health",
        "/admin/targets/{id}/resume",
        "/admin/metrics",
        "/admin/audit",
        "/admin/audit/export",
        "/admin/audit/status",
      ]),
    );
    const putSource = doc.paths["/admin/sources/{id}"]!.put;
    const bodySchema = JSON.stringify(putSource.requestBody.content["application/json"].schema);
    // The source schema's auth variants and the allow-list default come straight from zod.
    expect(bodySchema).toContain("secretEnv");
    expect(bodySchema).toContain("actigraph");
    expect(Object.keys(putSource.responses)).toEqual(expect.arrayContaining(["201", "400", "401"]));
    expect(doc.paths["/webhooks/{source}"]).toBeUndefined();
    expect(Object.keys(doc.paths["/admin/sources/{id}/export"]!.get.responses["200"].content)).toEqual(["application/x-ndjson"]);
    expect(Object.keys(doc.paths["/admin/sources/{id}/integrity"]!)).toEqual(expect.arrayContaining(["get", "post"]));
  });
});

describe("OpenAPI coverage", () => {
  it("describes every admin API route (the dashboard's HTML pages aside)", async () => {
    const { app } = await import("../../src/app");
    const doc = (await (await admin("/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    const isPage = (path: string) => path === "/admin" || path === "/admin/" || /^\/admin\/(ui|login|logout)(\/|$)/.test(path);
    const apiRoutes = app.routes.filter((r) => r.path.startsWith("/admin/") && r.method !== "ALL" && !isPage(r.path) && !r.path.includes("*"));
    expect(apiRoutes.length).toBeGreaterThan(15);
    const missing = apiRoutes
      .map((r) => ({ method: r.method.toLowerCase(), path: r.path.replace(/:(\w+)/g, "{$1}") }))
      .filter((r) => r.path !== "/admin/openapi.json" && !doc.paths[r.path]?.[r.method]);
    expect(missing).toEqual([]);
  });
});
