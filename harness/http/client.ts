import { Agent as HttpAgent, type IncomingHttpHeaders, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { performance } from "node:perf_hooks";
import { err, ok, type Result } from "../../src/lib/result.ts";

/**
 * The harness's one HTTP client, close to the wire (node:http, so that bodies, lengths, header
 * casing and content types are exactly what we say): `http()` for one request, `createSender()`
 * for CentrePoint's side (keep-alive agents of its own, `Expect: 100-continue` as .NET sends it),
 * and `adminClient()` for the relay's admin API. CentrePoint's headers and signature:
 * ../centrepoint/headers.ts and ../centrepoint/signing.ts.
 */

/** A keep-alive agent shared by all requests of a run (CentrePoint's .NET client keeps connections alive too). */
export const agent = new HttpAgent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 1_000 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 1_000 });

/** An HTTP answer. */
export interface Reply {
  status: number;
  /** Header names lower-case. */
  headers: IncomingHttpHeaders;
  text: string;
  json: any;
  /** From the request's start to the answer's end. */
  latencyMs: number;
}

/** Options of one request. */
export interface RequestOptions {
  method?: string;
  /** Sent with the casing given. With `Expect: 100-continue` the body waits for `100 Continue` (or EXPECT_CONTINUE_WAIT_MS, as .NET does). */
  headers?: Record<string, string>;
  /** Chunks are written one by one (a chunked body when no content-length is set). */
  body?: string | Uint8Array | (string | Uint8Array)[];
  /** The request fails when the connection is idle this long (default 15 s). */
  timeoutMs?: number;
  /** Keep-alive agents to use instead of the shared ones (their protocol must match the URL's). */
  agent?: HttpAgent;
  /** Response bytes kept (the rest is read and dropped); unbounded when omitted. */
  maxResponseBytes?: number;
}

/** How long a .NET HttpClient waits for `100 Continue` before sending the body anyway. */
export const EXPECT_CONTINUE_WAIT_MS = 350;

/**
 * One request, bounded by `timeoutMs`; rejects when there is no HTTP answer (refused, reset,
 * timeout). A final answer before the body went out (an early 401 to `Expect: 100-continue`) is
 * taken without sending the body.
 */
export function http(url: string, opts: RequestOptions = {}): Promise<Reply> {
  const method = opts.method ?? "GET";
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const secure = url.startsWith("https:");
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = (secure ? httpsRequest : httpRequest)(url, {
      method,
      headers: opts.headers,
      agent: opts.agent ?? (secure ? httpsAgent : agent),
      timeout: timeoutMs,
    });
    const parts = opts.body === undefined ? [] : Array.isArray(opts.body) ? opts.body : [opts.body];
    let bodySent = false;
    const sendBody = () => {
      if (bodySent) return;
      bodySent = true;
      for (const p of parts) req.write(p);
      req.end();
    };
    const expectContinue = Object.keys(opts.headers ?? {}).some((h) => h.toLowerCase() === "expect");
    const continueTimer = expectContinue ? setTimeout(sendBody, EXPECT_CONTINUE_WAIT_MS) : undefined;
    req.on("continue", sendBody);
    req.on("timeout", () => req.destroy(new Error(`no response within ${timeoutMs} ms: ${method} ${url}`)));
    // A reused keep-alive socket that the server closed just as we wrote is a known race of HTTP/1.1 clients; say so.
    req.on("error", (e) => {
      clearTimeout(continueTimer);
      reject(
        req.reusedSocket && !/no response within/.test(e.message)
          ? Object.assign(new Error(`${e.message} (on a reused keep-alive connection)`), { code: (e as NodeJS.ErrnoException).code })
          : e,
      );
    });
    req.on("response", (res) => {
      clearTimeout(continueTimer);
      const early = !bodySent;
      bodySent = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (opts.maxResponseBytes === undefined || size <= opts.maxResponseBytes) chunks.push(c);
      });
      res.on("error", reject);
      res.on("end", () => {
        if (early) req.destroy();
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown = undefined;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, latencyMs: performance.now() - started });
      });
    });
    if (!expectContinue) sendBody();
  });
}

/** A response as the simulator needs it; header names lower-case. */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  latencyMs: number;
}

/** Sends one POST; an error result means no HTTP response (refused, reset, timeout). */
export type SendFn = (url: string, headers: Record<string, string>, body: string) => Promise<Result<HttpResponse, string>>;

/** Response bytes the sender keeps (the relay answers with small JSON). */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * A keep-alive HTTP(S) client like CentrePoint's, with `concurrency` sockets of its own: POSTs with
 * the given header casing and an exact Content-Length, `Expect: 100-continue` as .NET sends it.
 * Every request is bounded by `timeoutMs`. Call `close()` to free the sockets.
 */
export function createSender(options: { concurrency: number; timeoutMs: number }): { send: SendFn; close: () => void } {
  const agents = {
    http: new HttpAgent({ keepAlive: true, maxSockets: options.concurrency }),
    https: new HttpsAgent({ keepAlive: true, maxSockets: options.concurrency }),
  };
  const send: SendFn = async (url, headers, body) => {
    const payload = Buffer.from(body, "utf8");
    try {
      const r = await http(url, {
        method: "POST",
        headers: { ...headers, "Content-Length": String(payload.byteLength) },
        body: payload,
        timeoutMs: options.timeoutMs,
        agent: url.startsWith("https:") ? agents.https : agents.http,
        maxResponseBytes: MAX_RESPONSE_BYTES,
      });
      return ok({ status: r.status, headers: r.headers, body: r.text, latencyMs: r.latencyMs });
    } catch (e) {
      return err((e as Error).message);
    }
  };
  return { send, close: () => Object.values(agents).forEach((a) => a.destroy()) };
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
