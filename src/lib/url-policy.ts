import ipaddr from "ipaddr.js";
import { embeddedIPv4 } from "./ip";
import { err, ok, type Result } from "./result";

/**
 * Target URL policy: https only; plain http only to a loopback host, and only when
 * ALLOW_HTTP_TARGETS is "true" (local development and tests). A host written as an IP literal must
 * be a public unicast address: private, loopback, link-local, unique-local, shared (CGNAT),
 * unspecified, multicast and reserved ranges are refused, v4 and v6, including v4 addresses
 * embedded in v6 (mapped, IPv4-compatible `::a.b.c.d`: lib/ip.ts `embeddedIPv4`; 6to4, NAT64, Teredo). Loopback (127.0.0.0/8, ::1, localhost) is allowed
 * only with ALLOW_HTTP_TARGETS. Names are not resolved here: a name that resolves to an internal
 * address is the DNS owner's choice, and Workers' outbound fetch does not reach private networks.
 */
export function checkTargetUrl(url: string, allowHttp: boolean): Result<void, string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return err("must be an absolute URL");
  }
  if (parsed.username || parsed.password) return err("must not carry credentials; use auth with a named secret");
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return err("must be an https:// URL");
  const host = hostClass(parsed.hostname);
  if (host === "loopback") {
    return allowHttp ? ok(undefined) : err("must not point at a loopback address (allowed only with ALLOW_HTTP_TARGETS=true, for local development)");
  }
  if (host !== "public") return err(`must not point at ${host} (the relay only sends to public addresses)`);
  if (parsed.protocol === "http:") {
    return err(
      allowHttp
        ? "http:// is allowed only to loopback hosts (127.0.0.0/8, ::1, localhost)"
        : "must be an https:// URL (http:// is allowed only to loopback with ALLOW_HTTP_TARGETS=true)",
    );
  }
  return ok(undefined);
}

/** Whether a URL's hostname is loopback (127.0.0.0/8, ::1 and its IPv4-embedding forms, localhost). */
export function isLoopbackHost(hostname: string): boolean {
  return hostClass(hostname) === "loopback";
}

/** What a URL host is: a name or public address, loopback, or a description of the internal range it names. */
function hostClass(hostname: string): "public" | "loopback" | string {
  const host = hostname.toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return "loopback";
  const literal = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (!ipaddr.isValid(literal)) return "public"; // a name (the URL parser already turned every IPv4 spelling into dotted decimal)
  const addr = embeddedIPv4(ipaddr.parse(literal));
  const range = addr.range();
  if (range === "loopback") return "loopback";
  if (range === "unicast") return "public";
  return `an internal or reserved address (${range} range)`;
}
