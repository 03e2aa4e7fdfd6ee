import { Agent, request } from "node:http";

/**
 * An HTTP client close to the wire (node:http, so that bodies, lengths and content types are
 * exactly what we say), and the relay's admin API. CentrePoint's headers and signature:
 * ../centrepoint/headers.ts and ../centrepoint/signing.ts.
 */

/** A keep-alive agent shared by all requests of a run (CentrePoint's .NET client keeps connections alive too). */
export const agent = new Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 1_000 });

/** An HTTP answer. */
export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** One request; `body` chunks are written one by one (a chunked body when no content-length is set). Bounded by `timeoutMs`. */
export function http(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array | (string | Uint8Array)[]; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? "GET", headers: opts.headers, agent, timeout: opts.timeoutMs ?? 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown = undefined;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${opts.timeoutMs ?? 15_000} ms: ${opts.method ?? "GET"} ${url}`)));
    // A reused keep-alive socket that the server closed just as we wrote is a known race of HTTP/1.1 clients; say so.
    req.on("error", (e) =>
      reject(
        req.reusedSocket && !/timeout/.test(e.message)
          ? Object.assign(new Error(`${e.message} (on a reused keep-alive connection)`), { code: (e as NodeJS.ErrnoException).code })
          : e,
      ),
    );
    const parts = opts.body === undefined ? [] : Array.isArray(opts.body) ? opts.body : [opts.body];
    for (const p of parts) req.write(p);
    req.end();
  });
}

/** The admin API of one relay. */
export function adminClient(baseUrl: string, token: string) {
  const call = (method: string, path: string, body?: unknown) =>
    http(`${baseUrl}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
  return {
    call,
    putSource: (id: string, doc: unknown) => call("PUT", `/sources/${id}`, doc),
    putTarget: (id: string, doc: unknown) => call("PUT", `/targets/${id}`, doc),
    /** Every delivery of one source (follows the cursor; bounded to 100 pages). */
    async deliveries(source: string): Promise<{ deliveryId: string; kind: string; attention: string | null; duplicateCount: number }[]> {
      const out: { deliveryId: string; kind: string; attention: string | null; duplicateCount: number }[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 100; page++) {
        const r = await call("GET", `/deliveries?source=${source}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        if (r.status !== 200) throw new Error(`GET /admin/deliveries?source=${source}: ${r.status} ${r.text}`);
        out.push(...r.json.items);
        cursor = r.json.next;
        if (!cursor) break;
      }
      return out;
    },
  };
}
export type AdminClient = ReturnType<typeof adminClient>;
