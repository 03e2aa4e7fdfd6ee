/**
 * A client wired to the fake CentrePoint with a controlled clock: `sleep` records the delay and
 * advances the clock, so no test waits for real.
 */
import { createFakeCentrePoint, type FakeCentrePointOptions } from "../../../../harness/fake-centrepoint";
import { createCentrePointApi, type CentrePointApiOptions, type RequestMetric } from "../../../../src/providers/centrepoint/api/client";
import { createTokenCache } from "../../../../src/providers/centrepoint/api/token";

/** The clock's start: 2030-01-01T00:00:00Z. */
export const T0 = Date.UTC(2030, 0, 1);

/** The API client's credentials as the fake knows them. */
export const CLIENT = { clientId: "relay-client-id", clientSecret: "client-secret-9f8e7d6c5b4a" } as const;

/** Options of `createHarness`. */
export interface HarnessOptions {
  fake?: FakeCentrePointOptions;
  client?: Partial<CentrePointApiOptions>;
  /** Wraps the fake's fetch (e.g. to throw network errors); gets the fake's fetch as `next`. */
  wrapFetch?: (next: typeof fetch) => typeof fetch;
}

/** A fake, a client of it, the clock, recorded sleeps and metrics, and every bearer token sent. */
export function createHarness(options: HarnessOptions = {}) {
  const clock = { t: T0 };
  const now = () => clock.t;
  const sleeps: number[] = [];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    clock.t += ms;
  };
  const fake = createFakeCentrePoint({ now, clients: [{ ...CLIENT }], ...options.fake });
  const tokensSent = new Set<string>();
  const spy: typeof globalThis.fetch = async (input, init) => {
    const authorization = new Headers(init?.headers).get("authorization");
    if (authorization) tokensSent.add(authorization.replace(/^Bearer /, ""));
    return fake.fetch(input as Request | string | URL, init);
  };
  const fetchFn = options.wrapFetch ? options.wrapFetch(spy) : spy;
  const tokens = createTokenCache();
  const metrics: RequestMetric[] = [];
  const api = createCentrePointApi({
    apiUrl: "https://api.fake.test",
    authUrl: "https://auth.fake.test/",
    ...CLIENT,
    fetch: fetchFn,
    now,
    sleep,
    random: () => 0.5,
    tokens,
    onRequest: (m) => metrics.push(m),
    ...options.client,
  });
  return { clock, now, sleeps, fake, api, tokens, tokensSent, metrics };
}

/** Every secret a test must never find in output: the client secret and every token sent. */
export function secretsOf(h: { tokensSent: Set<string> }): string[] {
  return [CLIENT.clientSecret, ...h.tokensSent];
}
