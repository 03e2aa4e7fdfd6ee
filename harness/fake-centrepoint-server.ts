/**
 * The fake CentrePoint over real HTTP, for Node scripts (simulator, demo, e2e): node:http on
 * 127.0.0.1 bridged to `fake.fetch`, plus a webhook pump that sends the data_retrieval_complete
 * webhooks of completed raw requests to a relay, signed the way CentrePoint signs them.
 *
 * Contracts: listens on 127.0.0.1 only; the rate limit counts per peer address (the socket's);
 * request bodies are capped at 1 MiB (413 beyond); every
 * timer is bounded (`maxTicks`), unref'd, and cleared by `stop()` or the server's `close()`.
 */
import { createHmac, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createFakeCentrePoint, type FakeCentrePoint, type FakeCentrePointOptions } from "./fake-centrepoint.ts";
import type { SendFn } from "./http/client.ts";

/** A running fake. */
export interface FakeCentrePointServer {
  /** Base URL, e.g. http://127.0.0.1:40123 (use it as both the API and the auth URL). */
  url: string;
  fake: FakeCentrePoint;
  /** Starts a webhook pump that `close()` stops. */
  startWebhookPump(options: WebhookPumpOptions): WebhookPump;
  /** Stops the pumps and the server. */
  close(): Promise<void>;
}

/** Where and how the pump sends. */
export interface WebhookPumpOptions {
  /** The relay's CentrePoint endpoint, e.g. http://127.0.0.1:8787/centrepoint/<source>. */
  relayUrl: string;
  /** HMAC secret of the webhook (UTF-8 key), as configured in the portal. */
  secret: string;
  /** Webhook named in the header and whose history records the sends (default: the first webhook of the request's study, else the fake's first). */
  studyId?: string;
  webhookId?: string;
  /** Interval of the timer, ms (default 1000, at least 10). */
  intervalMs?: number;
  /** The timer stops after this many ticks (default 3600). */
  maxTicks?: number;
  /** Timeout of one POST, ms (default 10 000). */
  timeoutMs?: number;
  /** Default: global fetch. */
  fetch?: typeof fetch;
}

/** One webhook the pump sent. */
export interface PumpSend {
  deliveryId: string;
  trackingId: string;
  /** The relay's status, or null when the POST failed. */
  status: number | null;
  error: string | null;
}

/** A running pump. */
export interface WebhookPump {
  /** Completes due requests and sends their webhooks now (what each timer tick does). */
  tick(): Promise<PumpSend[]>;
  /** Every send so far. */
  sends(): PumpSend[];
  /** Whether the timer is still running. */
  active(): boolean;
  /** Clears the timer. */
  stop(): void;
}

/** CentrePoint's `X-ActiGraph-Signature`: base64 HMAC-SHA256 of the exact body bytes, UTF-8 key. */
export function signCentrePointBody(secret: string, body: string): string {
  return createHmac("sha256", Buffer.from(secret, "utf8")).update(body, "utf8").digest("base64");
}

/** Which sends a logging sender records, by the relay's status (null: no answer). */
export type LogFilter = (status: number | null) => boolean;

/**
 * Wraps a sender so each webhook it sends is also logged in the fake's history, as CentrePoint logs
 * its own sends: the request headers and body as sent, and the relay's status (or, without an
 * answer, CentrePoint's error message). `logs` picks the sends that are CentrePoint's (default:
 * all); requests CentrePoint never made (a forged signature) stay out of its history.
 */
export function historyLoggingSend(fake: FakeCentrePoint, send: SendFn, options: { studyId?: string; webhookId?: string; logs?: LogFilter } = {}): SendFn {
  const header = (headers: Record<string, string>, name: string) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return async (url, headers, body) => {
    const result = await send(url, headers, body);
    const status = result.ok ? result.value.status : null;
    if (options.logs?.(status) ?? true) {
      fake.recordDelivery({
        studyId: options.studyId,
        webhookId: options.webhookId,
        deliveryId: header(headers, "x-actigraph-delivery"),
        event: header(headers, "x-actigraph-event") ?? "upload",
        body,
        headers,
        ...(result.ok
          ? { responseCode: result.value.status }
          : { errorMessage: `An error occurred while attempting to send a webhook message: ${result.error}` }),
      });
    }
    return result;
  };
}

const MAX_BODY_BYTES = 1024 * 1024;

/** Headers not forwarded from node:http to the fake (hop-by-hop or recomputed). */
const SKIPPED_HEADERS = new Set(["host", "connection", "keep-alive", "transfer-encoding", "upgrade", "expect", "content-length"]);

/**
 * Starts a pump on `fake`: every `intervalMs` it calls `completeDue()` and POSTs each returned
 * data_retrieval_complete body to `relayUrl` with CentrePoint's headers and signature, and records
 * each send (answer or error) in the fake's webhook history. One tick at a time.
 */
export function startWebhookPump(fake: FakeCentrePoint, options: WebhookPumpOptions): WebhookPump {
  const send = options.fetch ?? fetch;
  const sent: PumpSend[] = [];
  const maxTicks = Math.max(0, Math.floor(options.maxTicks ?? 3600));
  let ticks = 0;
  let running: Promise<PumpSend[]> | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;

  /** The webhook a request's send is recorded under: the configured one, else the first of its study, else the first. */
  const webhookFor = (studyId: string): { studyId: string; webhookId: string } => {
    const all = fake.webhooks();
    if (options.studyId !== undefined && options.webhookId !== undefined) return { studyId: options.studyId, webhookId: options.webhookId };
    const found = all.find((w) => w.studyId === (options.studyId ?? studyId)) ?? all[0];
    if (!found) throw new Error("fake CentrePoint has no webhook to record sends under");
    return { studyId: found.studyId, webhookId: found.webhookId };
  };

  const deliver = async (trackingId: string, studyId: string, body: string): Promise<PumpSend> => {
    const deliveryId = randomUUID();
    const signature = signCentrePointBody(options.secret, body);
    const hook = webhookFor(studyId);
    const headers: Record<string, string> = {
      "Content-Type": "application/json; charset=utf-8",
      "User-Agent": "ActiGraph-Hookshot/1.0",
      "X-ActiGraph-Event": "data_retrieval_complete",
      "X-ActiGraph-Delivery": deliveryId,
      "X-ActiGraph-Webhook-id": hook.webhookId,
      "X-ActiGraph-Signature": signature,
      "X-Client-Cert-Used": "false",
    };
    let result: PumpSend;
    try {
      const res = await send(options.relayUrl, { method: "POST", headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
      await res.arrayBuffer();
      result = { deliveryId, trackingId, status: res.status, error: null };
    } catch (e) {
      result = {
        deliveryId,
        trackingId,
        status: null,
        error: `An error occurred while attempting to send a webhook message: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
    fake.recordDelivery({
      ...hook,
      deliveryId,
      event: "data_retrieval_complete",
      body,
      headers: { "X-ActiGraph-Signature": signature },
      ...(result.status === null ? { errorMessage: result.error! } : { responseCode: result.status }),
    });
    sent.push(result);
    return result;
  };

  const tick = (): Promise<PumpSend[]> => {
    if (running) return running;
    running = (async () => {
      const out: PumpSend[] = [];
      for (const hook of fake.completeDue()) out.push(await deliver(hook.trackingId, hook.studyId, hook.body));
      return out;
    })().finally(() => {
      running = null;
    });
    return running;
  };

  const stop = (): void => {
    if (timer) clearInterval(timer);
    timer = null;
  };

  if (maxTicks > 0) {
    timer = setInterval(
      () => {
        ticks++;
        if (ticks >= maxTicks) stop();
        void tick();
      },
      Math.max(10, options.intervalMs ?? 1000),
    );
    timer.unref();
  }
  return { tick, sends: () => [...sent], active: () => timer !== null, stop };
}

/** Starts the fake on 127.0.0.1 (`port` 0, the default, picks a free port). */
export async function startFakeCentrePoint(options: FakeCentrePointOptions & { port?: number } = {}): Promise<FakeCentrePointServer> {
  const { port = 0, ...fakeOptions } = options;
  const fake = createFakeCentrePoint(fakeOptions);
  const pumps: WebhookPump[] = [];
  let base = "";
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (c: Buffer) => {
      size += c.byteLength;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on("end", () => {
      if (tooLarge) {
        res.writeHead(413, { "content-type": "text/plain; charset=utf-8" }).end("Payload Too Large");
        return;
      }
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined || SKIPPED_HEADERS.has(name)) continue;
        headers.set(name, Array.isArray(value) ? value.join(", ") : value);
      }
      const method = (req.method ?? "GET").toUpperCase();
      const body = method === "GET" || method === "HEAD" ? undefined : Buffer.concat(chunks);
      fake
        .fetch(new Request(`${base}${req.url ?? "/"}`, { method, headers, body }), undefined, req.socket.remoteAddress ?? "unknown")
        .then(async (response) => {
          const out = Buffer.from(await response.arrayBuffer());
          res.writeHead(response.status, Object.fromEntries(response.headers)).end(out);
        })
        .catch((e: unknown) => {
          res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`fake CentrePoint server: ${e instanceof Error ? e.message : String(e)}`);
        });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    fake,
    startWebhookPump(pumpOptions) {
      const pump = startWebhookPump(fake, pumpOptions);
      pumps.push(pump);
      return pump;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of pumps) p.stop();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
