import { describe, expect, it } from "vitest";
import { checkTargetUrl } from "../../src/lib/url-policy";

describe("checkTargetUrl", () => {
  it("accepts https to any host", () => {
    expect(checkTargetUrl("https://edc.example.org/hooks/cp", false).ok).toBe(true);
  });

  it("refuses plain http when ALLOW_HTTP_TARGETS is off, even to loopback", () => {
    expect(checkTargetUrl("http://127.0.0.1:8787/hook", false).ok).toBe(false);
  });

  it("accepts http to loopback hosts when allowed", () => {
    for (const url of ["http://127.0.0.1:9000/x", "http://127.10.20.30/", "http://localhost:8080/", "http://[::1]:9000/"]) {
      expect(checkTargetUrl(url, true), url).toEqual({ ok: true, value: undefined });
    }
  });

  it("refuses http to a non-loopback host even when allowed", () => {
    for (const url of ["http://edc.example.org/", "http://10.0.0.1/", "http://128.0.0.1/", "http://localhost.evil.example/"]) {
      expect(checkTargetUrl(url, true).ok, url).toBe(false);
    }
  });

  it("refuses other schemes, relative URLs and credentials in the URL", () => {
    expect(checkTargetUrl("ftp://edc.example.org/", true).ok).toBe(false);
    expect(checkTargetUrl("/hooks", true).ok).toBe(false);
    expect(checkTargetUrl("https://user:pass@edc.example.org/", true).ok).toBe(false);
  });
});
