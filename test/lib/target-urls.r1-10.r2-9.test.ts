import { describe, expect, it } from "vitest";
import { checkTargetUrl } from "../../src/lib/url-policy";
import { admin, freshId } from "../support/helpers";

/**
 * Review finding 10: targets could point at private, loopback and link-local IP literals over
 * https (cloud metadata at 169.254.169.254, 10.0.0.5), and the first 4 KiB of the answer is shown
 * to admins. Only the validator is exercised: no request is ever sent to these addresses.
 */

const CLASSES: Record<string, string[]> = {
  "private IPv4": ["https://10.0.0.5/", "https://172.16.0.1/", "https://172.31.255.254/", "https://192.168.1.10/hooks"],
  loopback: ["https://127.0.0.1/", "https://127.8.9.10:8443/", "https://[::1]/", "https://localhost/"],
  "link-local": ["https://169.254.169.254/latest/meta-data/", "https://[fe80::1]/"],
  "unique-local IPv6": ["https://[fc00::1]/", "https://[fd12:3456::1]/"],
  "IPv4-mapped IPv6": ["https://[::ffff:10.0.0.5]/", "https://[::ffff:169.254.169.254]/", "https://[::ffff:127.0.0.1]/"],
  "other encodings of an IPv4 literal": ["https://2130706433/", "https://0x7f.0.0.1/", "https://0251.0376.0251.0376/"],
  unspecified: ["https://0.0.0.0/", "https://[::]/"],
  "shared address space (carrier-grade NAT)": ["https://100.64.0.1/"],
  // Issue 16, item 9: an address whose first 96 bits are zero is its last 32 bits as IPv4.
  "IPv4-compatible IPv6": [
    "https://[::a9fe:a9fe]/",
    "https://[::169.254.169.254]/",
    "https://[::7f00:1]/",
    "https://[::a00:5]/",
    "https://[::c0a8:10a]/",
    "https://[0:0:0:0:0:0:6440:1]/",
    "https://[::ffff:a9fe:a9fe]/",
  ],
};

describe("target URLs that name internal addresses", () => {
  for (const [name, urls] of Object.entries(CLASSES)) {
    it(`refuses ${name}`, () => {
      for (const url of urls) expect(checkTargetUrl(url, false).ok, url).toBe(false);
    });
  }

  it("allows loopback only when ALLOW_HTTP_TARGETS is on, over http or https", () => {
    for (const url of ["https://127.0.0.1:9443/", "http://127.0.0.1:9000/", "https://[::1]/", "http://localhost:8080/"]) {
      expect(checkTargetUrl(url, true).ok, url).toBe(true);
    }
    for (const url of ["https://10.0.0.5/", "https://169.254.169.254/", "https://[fd00::1]/"]) expect(checkTargetUrl(url, true).ok, url).toBe(false);
  });

  it("reads an IPv4-compatible IPv6 loopback as loopback: refused, or allowed only with ALLOW_HTTP_TARGETS", () => {
    expect(checkTargetUrl("https://[::7f00:1]/", false)).toMatchObject({ ok: false, error: expect.stringContaining("loopback") });
    expect(checkTargetUrl("https://[::7f00:1]/", true).ok).toBe(true);
    expect(checkTargetUrl("https://[::a9fe:a9fe]/", true).ok).toBe(false);
  });

  it("still accepts public addresses and names", () => {
    for (const url of [
      "https://edc.example.org/hooks",
      "https://93.184.215.14/x",
      "https://[2606:4700:4700::1111]/",
      "https://10.example.org/",
      "https://[::5db8:d70e]/",
    ]) {
      expect(checkTargetUrl(url, false).ok, url).toBe(true);
    }
  });

  it("refuses such a target through the admin API with a field-level 400", async () => {
    const res = await admin(`/targets/${freshId("t")}`, { method: "PUT", body: JSON.stringify({ url: "https://169.254.169.254/latest" }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { fields: { path: string }[] }).fields.map((f) => f.path)).toEqual(["url"]);
  });
});
