import http from "node:http";
import https from "node:https";
import { err, ok, type Result } from "../../src/lib/result.ts";

/** A response as the simulator needs it; header names lower-case. */
export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  latencyMs: number;
}

/** Sends one POST; an error result means no HTTP response (refused, reset, timeout). */
export type SendFn = (url: string, headers: Record<string, string>, body: string) => Promise<Result<HttpResponse, string>>;

/** How long a .NET HttpClient waits for `100 Continue` before sending the body anyway. */
const EXPECT_CONTINUE_WAIT_MS = 350;
/** Response bytes kept (the relay answers with small JSON). */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * A keep-alive HTTP(S) client like CentrePoint's: header names keep the given casing, and with
 * `Expect: 100-continue` the body goes after `100 Continue` (or after a short wait, as .NET does).
 * Every request is bounded by `timeoutMs`. Call `close()` to free the sockets.
 */
export function createSender(options: { concurrency: number; timeoutMs: number }): { send: SendFn; close: () => void } {
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: options.concurrency }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: options.concurrency }),
  };
  const send: SendFn = (url, headers, body) =>
    new Promise((resolve) => {
      const target = new URL(url);
      const started = performance.now();
      const payload = Buffer.from(body, "utf8");
      const client = target.protocol === "https:" ? https : http;
      const agent = agents[target.protocol as keyof typeof agents];
      const req = client.request(target, { method: "POST", agent, headers: { ...headers, "Content-Length": String(payload.byteLength) } });
      let bodySent = false;
      const sendBody = () => {
        if (bodySent) return;
        bodySent = true;
        req.end(payload);
      };
      const expectContinue = Object.keys(headers).some((h) => h.toLowerCase() === "expect");
      const continueTimer = expectContinue ? setTimeout(sendBody, EXPECT_CONTINUE_WAIT_MS) : undefined;
      const deadline = setTimeout(() => req.destroy(new Error(`no response within ${options.timeoutMs} ms`)), options.timeoutMs);
      const finish = (result: Result<HttpResponse, string>) => {
        clearTimeout(continueTimer);
        clearTimeout(deadline);
        resolve(result);
      };
      req.on("continue", sendBody);
      req.on("error", (e) => finish(err(e.message)));
      req.on("response", (res) => {
        // A final answer before the body was sent (e.g. an early 401): the body is not sent.
        const early = !bodySent;
        bodySent = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
        });
        res.on("error", (e) => finish(err(e.message)));
        res.on("end", () => {
          if (early) req.destroy();
          finish(
            ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), latencyMs: performance.now() - started }),
          );
        });
      });
      if (!expectContinue) sendBody();
    });
  return { send, close: () => Object.values(agents).forEach((a) => a.destroy()) };
}
