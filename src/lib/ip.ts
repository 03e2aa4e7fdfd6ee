import ipaddr from "ipaddr.js";
import { CENTREPOINT_IPS } from "../providers/centrepoint/constants";

/**
 * Whether `ip` is inside one of the allow-list entries: an address, a CIDR, `*` (any), or
 * `actigraph` (CentrePoint's published list). IPv4-mapped IPv6 addresses match IPv4 entries.
 * Unparseable input never matches.
 */
export function ipAllowed(ip: string | undefined, allowList: readonly string[]): boolean {
  if (allowList.includes("*")) return true;
  if (!ip || !ipaddr.isValid(ip)) return false;
  let addr = ipaddr.parse(ip);
  if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  const entries = allowList.flatMap((e) => (e === "actigraph" ? [...CENTREPOINT_IPS] : [e]));
  return entries.some((entry) => {
    try {
      const [range, bits] = entry.includes("/") ? ipaddr.parseCIDR(entry) : [ipaddr.parse(entry), entry.includes(":") ? 128 : 32];
      return range.kind() === addr.kind() && addr.match(range, bits);
    } catch {
      return false;
    }
  });
}

/** Whether an allow-list entry is well-formed (used by config validation). */
export function isAllowListEntry(entry: string): boolean {
  if (entry === "*" || entry === "actigraph") return true;
  return entry.includes("/")
    ? ipaddr.IPv4.isValidCIDRFourPartDecimal(entry) || ipaddr.IPv6.isValidCIDR(entry)
    : ipaddr.IPv4.isValidFourPartDecimal(entry) || ipaddr.IPv6.isValid(entry);
}
