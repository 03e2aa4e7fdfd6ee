import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { readBody } from "../http/body.ts";

/**
 * Downstream targets for the e2e suite and the bench: real HTTP servers on 127.0.0.1 whose
 * behaviour can be changed while they run (answer, fail, hang, go slow, go away). Every request
 * is recorded with its arrival time (performance.now(), the same clock the load generators use).
 */

/** What a target does with one request. */
export type Behaviour =
  | { kind: "ok" }
  | { kind: "status"; status: number; headers?: Record<string, string> }
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

/** A controllable HTTP target. */
export interface Target {
  name: string;
  port: number;
  url: string;
  arrivals: Arrival[];
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

/** Starts a target on 127.0.0.1 (a free port unless `port` is given). */
export async function startTarget(name: string, initial: Behaviour = { kind: "ok" }, port = 0): Promise<Target> {
  let behaviour: Behaviour | ((a: Arrival, index: number) => Behaviour) = initial;
  const arrivals: Arrival[] = [];
  const delivered = new Map<string, number>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let server: Server | null = null;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const arrival: Arrival = { at: performance.now(), webhookId: header(req, "webhook-id"), bodyId: null, headers: req.headers, body: "", status: null };
    const index = arrivals.length;
    arrivals.push(arrival);
    readBody(req, (body) => {
      arrival.body = body;
      try {
        const parsed = JSON.parse(arrival.body) as { id?: unknown };
        arrival.bodyId = typeof parsed.id === "string" ? parsed.id : null;
      } catch {
        /* raw or broken body */
      }
      const b = typeof behaviour === "function" ? behaviour(arrival, index) : behaviour;
      const answer = (status: number, headers: Record<string, string> = {}) => {
        if (res.destroyed || res.writableEnded || req.socket.destroyed) return;
        arrival.status = status;
        if (status >= 200 && status < 300 && arrival.webhookId) delivered.set(arrival.webhookId, (delivered.get(arrival.webhookId) ?? 0) + 1);
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify({ target: name, status }));
      };
      if (b.kind === "ok") answer(200);
      else if (b.kind === "status") answer(b.status, b.headers);
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

  const actualPort = await listen(port);
  return {
    name,
    port: actualPort,
    url: `http://127.0.0.1:${actualPort}/hook/${name}`,
    arrivals,
    setBehaviour: (b) => {
      behaviour = b;
    },
    down: stop,
    up: async () => {
      if (!server) await listen(actualPort);
    },
    delivered: () => delivered,
    close: stop,
  };
}

function header(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  return typeof v === "string" ? v : Array.isArray(v) ? (v[0] ?? null) : null;
}
