/** Longest header value kept in storage (request headers of deliveries, the handshake log); longer values are cut. */
export const STORED_HEADER_MAX = 1024;

/** Headers whose values are never stored: credentials, and CentrePoint's body signature (a stored signature is a replayable request). */
const REDACTED_HEADERS = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-actigraph-signature)$|token|secret|password/i;

/** A header value as stored: at most STORED_HEADER_MAX characters. */
export function clipHeaderValue(value: string): string {
  return value.length > STORED_HEADER_MAX ? value.slice(0, STORED_HEADER_MAX) : value;
}

/** Request headers as stored: lower-case names, credentials and signatures replaced by `[redacted]`, values clipped. */
export function storedHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name] = REDACTED_HEADERS.test(name) ? "[redacted]" : clipHeaderValue(value);
  });
  return out;
}
