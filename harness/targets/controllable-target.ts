import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { Webhook } from "standardwebhooks";
import { readBody } from "../http/body.ts";
import { createTally, recordAttempt, type Tally } from "./tally.ts";

/**
 * The harness's one receiver: a downstream target for the demo, the e2e suite and the bench, a
 * real HTTP server on 127.0.0.1 whose behaviour can be changed while it runs (answer, fail, hang,
 * go slow, go away). Every request is recorded with its arrival time (performance.now(), the same
 * clock the load generators use) and every answer in its tally; with `verifySecret` it checks the
 * Standard Webhooks signature first, as an EDC would.
 */

/** What a target does with one request. */
export type Behaviour =
  | { kind: "ok" }
  /** Answers `status`; `note` goes into the log line (e.g. why it refuses). */
  | { kind: "status"; status: number; headers?: Record<string, string>; note?: string }
  /** Reads the request and never answers (until the server closes or the client gives up). */
  | { kind: "hang" }
  /** Answers 200 after `ms`. */
  | { kind: "slow"; ms: number };

/** One request as the target saw it. */
export interface Arrival {
  /** performance.now() when the request headers arrived. */
  at: number;
  /** The `webhook-id` header (the relay's idempotency key: the CentrePoint delivery id). */
  webhookId: string | null;
  /** CloudEvents `id` from the body, when the body is a JSON object with one. */
  bodyId: string | null;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The status answered; null while hanging or when the connection went away first. */
  status: number | null;
}

/** Options of `startTarget`. */
export interface TargetOptions {
  /** Port to listen on (a free one when omitted). */
  port?: number;
  /**
   * Standard Webhooks secret (`whsec_...`) the relay signs with: a request whose signature does not
   * verify is answered 401 and counted in `tally.invalidSignatures`, whatever the behaviour.
   */
  verifySecret?: string;
  /** Called with one line per answer: status, event type, webhook-id, retry and repeat marks. */
  log?: (line: string) => void;
  /** Called with each request answered 2xx whose body is a JSON object (e.g. to look at what enrichment added). */
  onDelivered?: (event: Record<string, unknown>) => void;
}

/** A controllable HTTP target. */
export interface Target {
  name: string;
  port: number;
  /** Where the relay sends: `http://127.0.0.1:<port>/hook/<name>`. */
  url: string;
  arrivals: Arrival[];
  /** Every answered request with a webhook-id: attempts, 2xx per id, other answers, bad signatures. */
  tally: Tally;
  /** Sets what happens to the next requests; a function decides per request. */
  setBehaviour(b: Behaviour | ((a: Arrival, index: number) => Behaviour)): void;
  /** Closes the listener and every connection: new connections are refused. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  /** Ids answered with a 2xx, and how many times each was (kept up to date as answers go out; do not modify). */
  delivered(): ReadonlyMap<string, number>;
  /** Stops for good. */
  close(): Promise<void>;
}

/** A behaviour: answers `status` (503 by default) to the first `n` requests, then 200; the demo's outage. */
export function failFirst(n: number, status = 503): (a: Arrival, index: number) => Behaviour {
  let refused = 0;
  return () => (refused < n ? { kind: "status", status, note: `simulated outage: ${status} ${++refused} of ${n}` } : { kind: "ok" });
}

/** Starts a target on 127.0.0.1. */
export async function startTarget(
  name: string,
  initial: Behaviour | ((a: Arrival, index: number) => Behaviour) = { kind: "ok" },
  options: TargetOptions = {},
): Promise<Target> {
  let behaviour: Behaviour | ((a: Arrival, index: number) => Behaviour) = initial;
  const arrivals: Arrival[] = [];
  const tally = createTally();
  const verifier = options.verifySecret ? new Webhook(options.verifySecret) : null;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let server: Server | null = null;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const arrival: Arrival = { at: performance.now(), webhookId: header(req, "webhook-id"), bodyId: null, headers: req.headers, body: "", status: null };
    const index = arrivals.length;
    arrivals.push(arrival);
    readBody(req, (body) => {
      arrival.body = body;
      let event: Record<string, unknown> | null = null;
      try {
        const parsed = JSON.parse(arrival.body) as unknown;
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) event = parsed as Record<string, unknown>;
        arrival.bodyId = typeof event?.id === "string" ? event.id : null;
      } catch {
        /* raw or broken body */
      }
      const id = arrival.webhookId ?? "-";
      const type = String(event?.type ?? "?").replace(/^com\.actigraph\.centrepoint\./, "");
      if (verifier) {
        try {
          verifier.verify(body, Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")])));
        } catch (e) {
          tally.invalidSignatures++;
          arrival.status = 401;
          options.log?.(`401 invalid signature (${(e as Error).message}) id=${id}`);
          res.writeHead(401).end();
          return;
        }
      }
      const b = typeof behaviour === "function" ? behaviour(arrival, index) : behaviour;
      const answer = (status: number, headers: Record<string, string> = {}, note?: string) => {
        if (res.destroyed || res.writableEnded || req.socket.destroyed) return;
        arrival.status = status;
        const ok = status >= 200 && status < 300;
        const attempt = arrival.webhookId ? recordAttempt(tally, arrival.webhookId, ok ? "delivered" : "refused") : 1;
        if (ok && event) options.onDelivered?.(event);
        const repeat = ok && (tally.delivered.get(id) ?? 0) > 1 ? "  REPEAT" : "";
        options.log?.(`${status} ${type.padEnd(30)} ${id}${attempt > 1 ? `  retry, attempt ${attempt}` : ""}${repeat}${note ? `  (${note})` : ""}`);
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify({ target: name, status }));
      };
      if (b.kind === "ok") answer(200);
      else if (b.kind === "status") answer(b.status, b.headers, b.note);
      else if (b.kind === "slow") {
        const t = setTimeout(() => (timers.delete(t), answer(200)), b.ms);
        timers.add(t);
      }
      // hang: nothing, ever.
    });
  };

  const listen = (p: number) =>
    new Promise<number>((resolve, reject) => {
      const s = createServer({ keepAliveTimeout: 5_000, requestTimeout: 0 }, handle);
      s.on("connection", (socket: Socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
      });
      s.once("error", reject);
      s.listen(p, "127.0.0.1", () => {
        server = s;
        const address = s.address();
        resolve(typeof address === "object" && address ? address.port : p);
      });
    });

  const stop = () =>
    new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const s = server;
      server = null;
      if (!s) return resolve();
      s.close(() => resolve());
      s.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    });

  const actualPort = await listen(options.port ?? 0);
  return {
    name,
    port: actualPort,
    url: `http://127.0.0.1:${actualPort}/hook/${name}`,
    arrivals,
    tally,
    setBehaviour: (b) => {
      behaviour = b;
    },
    down: stop,
    up: async () => {
      if (!server) await listen(actualPort);
    },
    delivered: () => tally.delivered,
    close: stop,
  };
}

function header(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  return typeof v === "string" ? v : Array.isArray(v) ? (v[0] ?? null) : null;
}
