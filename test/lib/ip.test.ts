import { describe, expect, it } from "vitest";
import { ipAllowed as ipAllowedWith, isAllowListEntry as isEntryWith } from "../../src/lib/ip";
import { CENTREPOINT_ADDRESS_KEYWORDS } from "../../src/providers/centrepoint/constants";

/** The allow-list as a CentrePoint source reads it (`actigraph` = the published list). */
const ipAllowed = (ip: string | undefined, list: readonly string[]) => ipAllowedWith(ip, list, CENTREPOINT_ADDRESS_KEYWORDS);
const isAllowListEntry = (entry: string) => isEntryWith(entry, CENTREPOINT_ADDRESS_KEYWORDS);

describe("ipAllowed", () => {
  it("expands actigraph to the published CentrePoint list", () => {
    expect(ipAllowed("13.68.136.18", ["actigraph"])).toBe(true);
    expect(ipAllowed("13.68.136.19", ["actigraph"])).toBe(false);
  });

  it("matches IPv4-mapped IPv6 addresses against IPv4 entries", () => {
    expect(ipAllowed("::ffff:13.82.60.74", ["actigraph"])).toBe(true);
  });

  it("matches CIDR boundaries exactly", () => {
    expect(ipAllowed("192.0.2.255", ["192.0.2.0/24"])).toBe(true);
    expect(ipAllowed("192.0.3.0", ["192.0.2.0/24"])).toBe(false);
    expect(ipAllowed("2001:db8:ffff::1", ["2001:db8::/32"])).toBe(true);
    expect(ipAllowed("2001:db9::1", ["2001:db8::/32"])).toBe(false);
  });

  it("never matches a missing or unparseable address unless * is listed", () => {
    expect(ipAllowed(undefined, ["actigraph"])).toBe(false);
    expect(ipAllowed("not-an-ip", ["0.0.0.0/0"])).toBe(false);
    expect(ipAllowed(undefined, ["*"])).toBe(true);
  });
});

describe("keywords", () => {
  it("knows no keyword unless the caller names it", () => {
    expect(ipAllowedWith("13.68.136.18", ["actigraph"])).toBe(false);
    expect(isEntryWith("actigraph")).toBe(false);
  });
});

describe("isAllowListEntry", () => {
  it("accepts addresses, CIDRs and the two keywords", () => {
    for (const e of ["*", "actigraph", "10.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32"]) expect(isAllowListEntry(e)).toBe(true);
  });

  it("refuses malformed entries and legacy IPv4 shorthands", () => {
    for (const e of ["10.0.0.0/33", "999.1.1.1", "10.1", "0x7f.1", "fe80::/129", "example.org"]) expect(isAllowListEntry(e)).toBe(false);
  });
});
