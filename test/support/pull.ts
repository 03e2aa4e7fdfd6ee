import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { WINDOW_MS } from "../../src/providers/centrepoint/api/budget";
import { clientName } from "../../src/pull/gateway";
import { freshId, ledgerOf, postWebhook, putSource, putTarget } from "./helpers";
import { outboxOf } from "./outbox";
import { centrepointBlock } from "./reconcile";

/**
 * Pull-side tests (src/pull/): the fake CentrePoint of test/support/reconcile.ts answers behind
 * CP_BASE through a fetch spy, every other request is a target's (answered 200, recorded). Date is
 * fixed at 2100, so alarms fire only when a test fires them.
 */

export { CP_BASE, CP_CLIENT, centrepointBlock, useFakeCentrePoint, useTestHooks } from "./reconcile";

/** FILE_LINK_SECRET and FILE_LINK_SECRET_PREVIOUS of vitest.config.ts. */
export const LINK_KEY = "test-file-link-key-7d2e91";
export const PREVIOUS_LINK_KEY = "test-file-link-key-previous-03bb";

/** Creates a source with a `centrepoint` block pointing at the fake (straight into KV); returns its id. */
export async function newPullSource(block: Record<string, unknown> = {}, doc: Record<string, unknown> = {}): Promise<string> {
  const id = freshId("p");
  await putSource(id, { allowedIps: ["*"], centrepoint: centrepointBlock(block), ...doc });
  return id;
}

/** Creates a target of `source` with the given document fields (e.g. `enrich`); returns its id. */
export async function newTargetOf(source: string, doc: Record<string, unknown> = {}): Promise<string> {
  const id = freshId("t");
  await putTarget(id, { url: `https://edc.example/${id}`, sources: [source], ...doc });
  return id;
}

/** The Puller stub of a source. */
export function pullerOf(source: string) {
  return env.PULLER.get(env.PULLER.idFromName(source));
}

/** The CentrePointGateway stub of the test block (or one with other fields). */
export function cpClientOf(block: Record<string, unknown> = {}) {
  const b = centrepointBlock(block) as Parameters<typeof clientName>[0];
  return env.CP_CLIENT.get(env.CP_CLIENT.idFromName(clientName(b)));
}

/** An upload body (completed) for subject `subject` and upload `upload` of study 189. */
export function uploadBodyOf(subject: number, upload: number): string {
  return JSON.stringify({ status: "completed", uploadId: String(upload), studyId: "189", subjectId: String(subject) });
}

/** A raw_processing_complete body for subject `subject` of study 189 over [min, max] (ISO with Z). */
export function rawProcessingBody(subject: number, min: string, max: string): string {
  return JSON.stringify({
    study_id: 189,
    subject_id: subject,
    subject_identifier: `SUBJ-${subject}`,
    monitor_serial: "TAS1F39160337",
    created_at_utc: max,
    min_event_timestamp: min,
    max_event_timestamp: max,
    status: "Completed",
    error_message: null,
  });
}

/** Posts a delivery and expects it accepted; returns its delivery id. */
export async function push(source: string, body: string, event = "upload", deliveryId: string = crypto.randomUUID()): Promise<string> {
  const res = await postWebhook(source, { body, event, deliveryId });
  expect(res.status).toBe(200);
  return deliveryId;
}

/** Fires the alarms the pull flow needs, in order: the ledger (hands the job to the Puller), the Puller (lookups), the ledger again (hands the targets off), each target's outbox. */
export async function settle(source: string, targets: readonly string[]): Promise<void> {
  await runDurableObjectAlarm(ledgerOf(source));
  await runDurableObjectAlarm(pullerOf(source));
  await runDurableObjectAlarm(ledgerOf(source));
  for (const t of targets) await runDurableObjectAlarm(outboxOf(t));
}

/** Waits for a ledger's background push (started after a commit) to finish. */
export async function drainLedger(source: string): Promise<void> {
  await runDurableObjectAlarm(ledgerOf(source));
}

/** Runs SQL inside a Durable Object (white-box reads). */
export function sqlOf(stub: DurableObjectStub, query: string, ...params: SqlStorageValue[]): Promise<Record<string, SqlStorageValue>[]> {
  return runInDurableObject(stub, (_, state) => state.storage.sql.exec(query, ...params).toArray());
}

/** The envelopes a target received (parsed), in order. */
export function envelopesTo(sent: readonly { url: string; body: string }[], target: string): Record<string, any>[] {
  return sent.filter((s) => s.url.endsWith(`/${target}`)).map((s) => JSON.parse(s.body) as Record<string, any>);
}

/** Fires a CentrePointGateway's alarm (its queue: polls, submissions). */
export function runQueue(block: Record<string, unknown> = {}): Promise<boolean> {
  return runDurableObjectAlarm(cpClientOf(block));
}

/** Pushes a raw_processing_complete and lets the ledger hand it to the Puller and the client submit it; returns the delivery id. */
export async function triggerRaw(source: string, subject: number, min: string, max: string, deliveryId?: string): Promise<string> {
  const id = await push(source, rawProcessingBody(subject, min, max), "raw_processing_complete", deliveryId);
  await drainLedger(source);
  await runQueue();
  return id;
}

/** Lets the fake complete every request that is due (after its 60 s) and pushes each data_retrieval_complete to the relay; returns their delivery ids. */
export async function completeRequests(
  fake: { completeDue(): { trackingId: string; body: string }[] },
  source: string,
  advance: (ms: number) => void,
): Promise<{ deliveryId: string; trackingId: string }[]> {
  advance(61_000);
  const out: { deliveryId: string; trackingId: string }[] = [];
  for (const hook of fake.completeDue()) out.push({ deliveryId: await push(source, hook.body, "data_retrieval_complete"), trackingId: hook.trackingId });
  return out;
}

/** The most of `times` (ascending, epoch ms) in any 60 s window ending at one of them. */
export function busiestWindow(times: readonly number[]): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[j]! <= times[i]! - WINDOW_MS) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}
