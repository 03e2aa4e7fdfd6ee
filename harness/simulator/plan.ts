import { createIdCounters, createSubjects, subjectEvents, validationBody } from "../centrepoint/payloads.ts";
import type { Rng } from "../prng.ts";
import type { CentrePointEvent } from "../../src/providers/centrepoint/constants.ts";

/** A new delivery: `fresh` with valid credentials (expect accepted), `bad` with wrong ones (expect 401). */
export interface NewDelivery {
  kind: "fresh" | "bad";
  deliveryId: string;
  event: CentrePointEvent;
  /** The exact body bytes to send (and sign). */
  body: string;
  subjectIdentifier: string;
}

/** A re-send of an earlier accepted delivery, chosen when it is sent (expect duplicate). */
export interface DuplicateSlot {
  kind: "duplicate";
}

/** One planned request after the handshake. */
export type PlannedRequest = NewDelivery | DuplicateSlot;

/** The handshake and the ordered requests of one run. */
export interface Plan {
  /** `X-ActiGraph-Webhook-id` of every request: the simulated webhook registration. */
  webhookId: string;
  handshake: { deliveryId: string; code: string; body: string };
  requests: PlannedRequest[];
}

/** How many of `count` requests are fresh, duplicates and bad; at least one is fresh. */
export function splitCount(count: number, duplicates: number, badSignatures: number): { fresh: number; duplicate: number; bad: number } {
  const duplicate = Math.floor(count * duplicates);
  const bad = Math.floor(count * badSignatures);
  return { fresh: count - duplicate - bad, duplicate, bad };
}

/** Fisher-Yates shuffle of kinds, then the first fresh one moved to the front (a duplicate needs an original). */
export function orderKinds(split: { fresh: number; duplicate: number; bad: number }, rng: Rng): PlannedRequest["kind"][] {
  const kinds: PlannedRequest["kind"][] = [
    ...Array<"fresh">(split.fresh).fill("fresh"),
    ...Array<"duplicate">(split.duplicate).fill("duplicate"),
    ...Array<"bad">(split.bad).fill("bad"),
  ];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const firstFresh = kinds.indexOf("fresh");
  if (firstFresh > 0) [kinds[0], kinds[firstFresh]] = [kinds[firstFresh]!, kinds[0]!];
  return kinds;
}

/**
 * Builds a run: payloads and the order of kinds come from `rng` (the seed), delivery ids and
 * the validation code from `newId` (fresh per run, so repeated runs do not collide). New
 * deliveries take the subjects' event streams in turn, so each subject's events keep pipeline order.
 */
export function buildPlan(options: { count: number; subjects: number; duplicates: number; badSignatures: number }, rng: Rng, newId: () => string): Plan {
  const webhookId = String(rng.int(10, 999));
  const subjects = createSubjects(rng, options.subjects);
  const ids = createIdCounters(rng);
  const streams = subjects.map((s) => subjectEvents(s, rng, ids));
  const kinds = orderKinds(splitCount(options.count, options.duplicates, options.badSignatures), rng);
  let turn = 0;
  const requests = kinds.map((kind): PlannedRequest => {
    if (kind === "duplicate") return { kind };
    const i = turn++ % subjects.length;
    const { event, body } = streams[i]!.next().value;
    return { kind, deliveryId: newId(), event, body: JSON.stringify(body), subjectIdentifier: subjects[i]!.subjectIdentifier };
  });
  const code = newId();
  return { webhookId, handshake: { deliveryId: newId(), code, body: JSON.stringify(validationBody(webhookId, code)) }, requests };
}
