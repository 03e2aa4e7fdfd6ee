/** What one target (controllable-target.ts) has answered, keyed by Standard Webhooks `webhook-id`. */
export interface Tally {
  /** Requests per webhook-id, whatever was answered. */
  attempts: Map<string, number>;
  /** Requests per webhook-id answered 2xx: 1 is exactly once, more are repeats. */
  delivered: Map<string, number>;
  /** Requests answered with anything but 2xx (a simulated outage, 410, 429, ...). */
  refused: number;
  /** Requests whose Standard Webhooks signature did not verify (answered 401). */
  invalidSignatures: number;
}

/** An empty tally. */
export function createTally(): Tally {
  return { attempts: new Map(), delivered: new Map(), refused: 0, invalidSignatures: 0 };
}

/** Records one answered request for `id`; returns which attempt it was (1 = first). */
export function recordAttempt(tally: Tally, id: string, answered: "delivered" | "refused"): number {
  const attempt = (tally.attempts.get(id) ?? 0) + 1;
  tally.attempts.set(id, attempt);
  if (answered === "delivered") tally.delivered.set(id, (tally.delivered.get(id) ?? 0) + 1);
  else tally.refused++;
  return attempt;
}

/** How a receiver's deliveries compare with the ids the relay accepted. */
export interface TallyCheck {
  expected: number;
  distinct: number;
  missing: string[];
  /** Delivered ids the relay never accepted (should not exist). */
  unknown: string[];
  /** Deliveries beyond the first per id (allowed: the relay is at-least-once; reported). */
  repeats: number;
  /** Ids delivered after at least one refused attempt. */
  retried: number;
  /** True when the distinct delivered ids equal the accepted ids and every signature verified. */
  holds: boolean;
}

/** Compares a tally with the relay's accepted delivery ids. */
export function checkTally(acceptedIds: readonly string[], tally: Tally): TallyCheck {
  const accepted = new Set(acceptedIds);
  const missing = acceptedIds.filter((id) => !tally.delivered.has(id));
  const unknown = [...tally.delivered.keys()].filter((id) => !accepted.has(id));
  let repeats = 0;
  let retried = 0;
  for (const [id, n] of tally.delivered) {
    repeats += n - 1;
    if ((tally.attempts.get(id) ?? 0) > n) retried++;
  }
  return {
    expected: accepted.size,
    distinct: tally.delivered.size,
    missing,
    unknown,
    repeats,
    retried,
    holds: missing.length === 0 && unknown.length === 0 && tally.invalidSignatures === 0,
  };
}
