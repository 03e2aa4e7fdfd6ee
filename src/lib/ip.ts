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

/** Whether an allow-list entry is well-formed: an address, a CIDR, `*`, or one of `keywords`. */
export function isAllowListEntry(entry: string, keywords: AddressKeywords = {}): boolean {
  if (entry === "*" || Object.hasOwn(keywords, entry)) return true;
  return entry.includes("/")
    ? ipaddr.IPv4.isValidCIDRFourPartDecimal(entry) || ipaddr.IPv6.isValidCIDR(entry)
    : ipaddr.IPv4.isValidFourPartDecimal(entry) || ipaddr.IPv6.isValid(entry);
}
