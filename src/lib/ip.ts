import ipaddr from "ipaddr.js";

/**
 * Address allow-lists, generic: entries are addresses, CIDRs (IPv4/IPv6), `*` (any), or a keyword
 * that names a list (the caller passes the keywords it knows, e.g. a provider's published
 * addresses). IPv4-mapped IPv6 addresses match IPv4 entries. Unparseable input never matches.
 */

/** Named address lists an allow-list may refer to by keyword. */
export type AddressKeywords = Readonly<Record<string, readonly string[]>>;

/** Whether `ip` is inside one of the allow-list entries. */
export function ipAllowed(ip: string | undefined, allowList: readonly string[], keywords: AddressKeywords = {}): boolean {
  if (allowList.includes("*")) return true;
  if (!ip || !ipaddr.isValid(ip)) return false;
  let addr = ipaddr.parse(ip);
  if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  const entries = allowList.flatMap((e) => (Object.hasOwn(keywords, e) ? [...keywords[e]!] : [e]));
  return entries.some((entry) => {
    try {
      const [range, bits] = entry.includes("/") ? ipaddr.parseCIDR(entry) : [ipaddr.parse(entry), entry.includes(":") ? 128 : 32];
      return range.kind() === addr.kind() && addr.match(range, bits);
    } catch {
      return false;
    }
  });
}

/**
 * The IPv4 address an IPv6 address stands for, if any: IPv4-mapped (`::ffff:a.b.c.d`) and every
 * other address whose first 96 bits are zero (IPv4-compatible, `::a.b.c.d`, e.g. `::7f00:1` is
 * 127.0.0.1), except `::` and `::1`, which keep their IPv6 meaning (unspecified, loopback).
 * Other addresses are returned unchanged.
 */
export function embeddedIPv4(addr: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  if (addr.kind() !== "ipv6") return addr;
  const v6 = addr as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address();
  const p = v6.parts;
  const compatible = p.slice(0, 6).every((x) => x === 0) && !(p[6] === 0 && p[7]! <= 1);
  return compatible ? ipaddr.fromByteArray(v6.toByteArray().slice(12)) : addr;
}

/**
 * The group a client address is rate-limited in: an IPv4 address (IPv4-mapped IPv6 included) on
 * its own, an IPv6 address by its /64 (one subscriber's usual allocation: its addresses are one
 * client), e.g. "2001:db8:1:2::/64". Absent: "unknown"; unparseable: the text itself.
 */
export function addressGroup(ip: string | undefined): string {
  if (!ip) return "unknown";
  if (!ipaddr.isValid(ip)) return ip;
  const addr = ipaddr.parse(ip);
  if (addr.kind() === "ipv4") return addr.toString();
  const v6 = addr as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
  return `${new ipaddr.IPv6([...v6.parts.slice(0, 4), 0, 0, 0, 0]).toString()}/64`;
}

/** Whether an allow-list entry is well-formed: an address, a CIDR, `*`, or one of `keywords`. */
export function isAllowListEntry(entry: string, keywords: AddressKeywords = {}): boolean {
  if (entry === "*" || Object.hasOwn(keywords, entry)) return true;
  return entry.includes("/")
    ? ipaddr.IPv4.isValidCIDRFourPartDecimal(entry) || ipaddr.IPv6.isValidCIDR(entry)
    : ipaddr.IPv4.isValidFourPartDecimal(entry) || ipaddr.IPv6.isValid(entry);
}
