import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { readBody } from "../http/body.ts";
import { createTally, recordAttempt, type Tally } from "./tally.ts";

/** Options of one demo receiver (a stand-in for an EDC endpoint). */
export interface ReceiverOptions {
  name: string;
  /** Standard Webhooks secret (`whsec_...`) the relay signs with. */
  secret: string;
  /** Answer 503 to this many (verified) requests first, then 200 (0: always healthy). */
  failFirst: number;
  log: (line: string) => void;
  /** Called with each verified event it answers 200 (the parsed CloudEvent), e.g. to look at what enrichment added. */
  onEvent?: (event: Record<string, unknown>) => void;
}

/** A running receiver. */
export interface Receiver {
  name: string;
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  tally: Tally;
  close: () => Promise<void>;
}

/**
 * Starts a receiver on 127.0.0.1 (random port): verifies the Standard Webhooks signature
 * (401 if it fails), answers 503 to its first `failFirst` requests, then 200, and tallies webhook-ids.
 */
export async function startReceiver(options: ReceiverOptions): Promise<Receiver> {
  const verifier = new Webhook(options.secret);
  const tally = createTally();
  let failuresLeft = options.failFirst;
  const server = http.createServer((req, res) => {
    readBody(req, (body) => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")]));
      const id = headers["webhook-id"] ?? "";
      let event: { type?: string };
      try {
        event = verifier.verify(body, headers) as typeof event;
      } catch (e) {
        tally.invalidSignatures++;
        options.log(`401 invalid signature (${(e as Error).message}) id=${id || "-"}`);
        res.writeHead(401).end();
        return;
      }
      const answered = failuresLeft > 0 ? "refused" : "delivered";
      if (answered === "refused") failuresLeft--;
      const attempt = recordAttempt(tally, id, answered);
      const what = `${(event.type ?? "?").replace(/^com\.actigraph\.centrepoint\./, "").padEnd(30)} ${id}${attempt > 1 ? `  retry, attempt ${attempt}` : ""}`;
      if (answered === "refused") {
        options.log(`503 ${what}  (simulated outage: 503 ${options.failFirst - failuresLeft} of ${options.failFirst})`);
        res.writeHead(503, { "content-type": "text/plain" }).end("temporarily unavailable");
        return;
      }
      options.onEvent?.(event as Record<string, unknown>);
      const repeat = (tally.delivered.get(id) ?? 0) > 1 ? "  REPEAT" : "";
      options.log(`200 ${what}${repeat}`);
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    name: options.name,
    url: `http://127.0.0.1:${port}`,
    tally,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
