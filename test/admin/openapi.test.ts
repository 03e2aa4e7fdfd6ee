import { describe, expect, it } from "vitest";
import { admin } from "../helpers";

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
        "/admin/replay",
        "/admin/deliveries/{source}/{id}/replay",
        "/admin/targets/{id}/dead",
        "/admin/targets/{id}/health",
        "/admin/targets/{id}/resume",
        "/admin/metrics",
      ]),
    );
    const putSource = doc.paths["/admin/sources/{id}"]!.put;
    const bodySchema = JSON.stringify(putSource.requestBody.content["application/json"].schema);
    // The source schema's auth variants and the allow-list default come straight from zod.
    expect(bodySchema).toContain("secretEnv");
    expect(bodySchema).toContain("actigraph");
    expect(Object.keys(putSource.responses)).toEqual(expect.arrayContaining(["201", "400", "401"]));
    expect(doc.paths["/webhooks/{source}"]).toBeUndefined();
  });
});
