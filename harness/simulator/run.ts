import { HEADER, VALIDATION_EVENT } from "../../src/providers/centrepoint/constants.ts";
import type { SimulateOptions } from "./args.ts";
import { centrepointHeaders, WIRE_NAME } from "../centrepoint/headers.ts";
import type { SendFn } from "../http/client.ts";
import { buildPlan, type NewDelivery, type Plan } from "./plan.ts";
import { createRng, guidLike, type Rng } from "../prng.ts";
import { credentialHeaders } from "../centrepoint/signing.ts";
import { sleep } from "../wait.ts";
import { classifyResponse, countByStatus, type Expectation, type HandshakeResult, type ResponseRecord, summarize, type Summary } from "./summary.ts";

/** Progress after each response. */
export interface Progress {
  done: number;
  total: number;
  byStatus: Record<string, number>;
  unexpected: number;
}

/** The I/O a run uses, injected so tests and the demo can drive it. */
export interface RunIo {
  send: SendFn;
  /** Source of delivery ids and trace ids; fresh per run unless a test fixes it. */
  idRng: Rng;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onProgress?: (progress: Progress) => void;
  /** Stops starting new requests; those in flight finish (each is bounded by its timeout). */
  signal?: AbortSignal;
}

type RunOptions = Omit<SimulateOptions, "json">;

/** Runs one simulation: the handshake, then every planned request paced at `rate` with at most `concurrency` in flight. */
export async function runSimulation(options: RunOptions, io: RunIo): Promise<Summary> {
  const now = io.now ?? (() => performance.now());
  const pause = io.sleep ?? sleep;
  const started = now();
  const plan = buildPlan(options, createRng(options.seed), () => guidLike(io.idRng));
  const handshake: HandshakeResult = options.handshake ? await sendHandshake(options, plan, io) : { status: "skipped" };
  const records: ResponseRecord[] = [];
  const finish = () => summarize(records, { url: options.url, seed: options.seed, handshake, durationMs: now() - started });
  if (handshake.status === "failed") return finish();

  const pickRng = createRng(options.seed ^ 0x5eed);
  const acknowledged: NewDelivery[] = [];
  const sentFresh: NewDelivery[] = [];
  const inFlight = new Set<Promise<void>>();
  const total = plan.requests.length;
  const loopStarted = now();

  const sendOne = async (delivery: NewDelivery, expected: Expectation) => {
    const headers = {
      ...centrepointHeaders({ event: delivery.event, deliveryId: delivery.deliveryId, webhookId: plan.webhookId }, io.idRng),
      ...credentialHeaders(options.credentials, delivery.body, delivery.kind === "fresh"),
    };
    const response = await io.send(options.url, headers, delivery.body);
    const status = response.ok ? response.value.status : null;
    const { outcome, ok } = classifyResponse(expected, status, response.ok ? response.value.body : "");
    const detail = ok ? undefined : response.ok ? `${status} ${response.value.body.slice(0, 120)}` : `no response: ${response.error}`;
    records.push({ deliveryId: delivery.deliveryId, expected, status, outcome, ok, latencyMs: response.ok ? response.value.latencyMs : 0, detail });
    if (expected === "accepted" && status !== null && status >= 200 && status < 300) acknowledged.push(delivery);
    io.onProgress?.({ done: records.length, total, byStatus: countByStatus(records), unexpected: records.filter((r) => !r.ok).length });
  };

  // A duplicate re-sends a delivery the relay has already acknowledged, so the expectation
  // ("duplicate") does not depend on which of two concurrent requests wins.
  const pickOriginal = async (): Promise<NewDelivery> => {
    while (acknowledged.length === 0 && inFlight.size > 0) await Promise.race(inFlight);
    const pool = acknowledged.length > 0 ? acknowledged : sentFresh;
    return pool[pickRng.int(0, pool.length - 1)]!;
  };

  for (const [i, planned] of plan.requests.entries()) {
    if (io.signal?.aborted) break;
    while (inFlight.size >= options.concurrency) await Promise.race(inFlight);
    const wait = loopStarted + (i * 1000) / options.rate - now();
    if (wait > 0) await pause(wait);
    if (io.signal?.aborted) break;
    const delivery = planned.kind === "duplicate" ? await pickOriginal() : planned;
    if (planned.kind === "fresh") sentFresh.push(planned);
    const expected: Expectation = planned.kind === "duplicate" ? "duplicate" : planned.kind === "bad" ? "rejected" : "accepted";
    const task: Promise<void> = sendOne(delivery, expected).finally(() => inFlight.delete(task));
    inFlight.add(task);
  }
  await Promise.all(inFlight);
  return finish();
}

/** Sends the validation handshake with the configured credentials; success is 200 plus the code echoed in `X-ActiGraph-Hook-Secret`. */
async function sendHandshake(options: RunOptions, plan: Plan, io: RunIo): Promise<HandshakeResult> {
  const { deliveryId, code, body } = plan.handshake;
  const headers = {
    ...centrepointHeaders({ event: VALIDATION_EVENT, deliveryId, webhookId: plan.webhookId }, io.idRng),
    [WIRE_NAME[HEADER.hookSecret]]: code,
    ...credentialHeaders(options.credentials, body),
  };
  const response = await io.send(options.url, headers, body);
  if (!response.ok) return { status: "failed", detail: `no response: ${response.error}` };
  const { status, headers: got } = response.value;
  const echoed = got[HEADER.hookSecret];
  if (status !== 200) return { status: "failed", httpStatus: status, detail: `HTTP ${status} ${response.value.body.slice(0, 120)}` };
  if (echoed !== code) return { status: "failed", httpStatus: status, detail: `X-ActiGraph-Hook-Secret not echoed (got ${JSON.stringify(echoed ?? null)})` };
  return { status: "ok", httpStatus: status };
}
