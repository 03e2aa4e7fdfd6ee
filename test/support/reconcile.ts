import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, vi } from "vitest";
import { createFakeCentrePoint, type FakeCentrePointOptions, type FakeDeliveryRecord } from "../../harness/fake-centrepoint";
import { clearTokenCache } from "../../src/providers/centrepoint/api/token";
import { freshId, putSource, putTarget } from "./helpers";
import { useClock } from "./clock";
import { type Sent } from "./outbox";

/**
 * Reconciliation tests: a fake CentrePoint (harness/fake-centrepoint.ts) answers every request to
 * CP_BASE through a spy on `fetch` (tests and Durable Objects share the isolate); CP_BASE is never
 * contacted for real. Every other request is a target's and is answered 200 and recorded.
 */

/**
 * The hooks of a reconciliation test file: Date fixed at the year 2100 (alarms fire only when a test
 * fires them), the console's `levels` collected into `lines` instead of printed, mocks restored.
 */
export function useTestHooks(levels: readonly ("log" | "warn" | "error")[] = ["log", "warn", "error"]) {
  const lines: string[] = [];
  beforeEach(() => {
    useClock();
    lines.length = 0;
    for (const level of levels) vi.spyOn(console, level).mockImplementation((line: unknown) => void lines.push(String(line)));
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
  return { lines, advance: (ms: number) => vi.setSystemTime(Date.now() + ms) };
}

/** The fake's base URL (API and auth): a loopback address that is never contacted. */
export const CP_BASE = "http://127.0.0.1:9";
/** The API client of vitest.config.ts (TEST_CP_CLIENT_ID, TEST_CP_CLIENT_SECRET). */
export const CP_CLIENT = { clientId: "relay-test-client", clientSecret: "test-cp-client-secret-4a1f9c" } as const;

/** A `centrepoint` block pointing at the fake. */
export function centrepointBlock(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    studyId: 189,
    webhookId: 74,
    clientIdEnv: "TEST_CP_CLIENT_ID",
    clientSecretEnv: "TEST_CP_CLIENT_SECRET",
    apiUrl: CP_BASE,
    authUrl: CP_BASE,
    ...overrides,
  };
}

/** A source with a `centrepoint` block and a target that takes every event of it; returns both ids. */
export async function newSourceWithTarget(): Promise<{ source: string; target: string }> {
  const source = await newReconciledSource();
  const target = freshId("t");
  await putTarget(target, { url: "https://edc.example/hooks", sources: [source] });
  return { source, target };
}

/** Creates a source with a `centrepoint` block (straight into KV) and returns its id. */
export async function newReconciledSource(doc: Record<string, unknown> = {}, block: Record<string, unknown> = {}): Promise<string> {
  const id = freshId("r");
  await putSource(id, { allowedIps: ["*"], centrepoint: centrepointBlock(block), ...doc });
  return id;
}

/** The Reconciler stub of a source. */
export function reconcilerOf(source: string) {
  return env.RECONCILER.get(env.RECONCILER.idFromName(source));
}

/** Installs a fake CentrePoint behind CP_BASE (and a 200-answering recorder for everything else); clears the isolate's token cache. */
export function useFakeCentrePoint(options: FakeCentrePointOptions = {}) {
  clearTokenCache();
  const fake = createFakeCentrePoint({ now: () => Date.now(), clients: [{ ...CP_CLIENT }], ...options });
  const sent: Sent[] = [];
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url.startsWith(`${CP_BASE}/`)) return fake.fetch(input as Request | string | URL, init);
    sent.push({ url, headers: { ...(init?.headers as Record<string, string>) }, body: new TextDecoder().decode(init?.body as Uint8Array) });
    return new Response("ok");
  });
  return { fake, sent, spy };
}

/** An upload body as CentrePoint sends it. */
export function uploadBodyFor(n: number, status = "completed"): string {
  return JSON.stringify({ status, uploadId: String(90_000 + n), studyId: "189", subjectId: String(2000 + (n % 5)) });
}

/** Records a delivery in the fake's history (one send attempt) with a fixed delivery id built from `n`. */
export function historyDelivery(fake: ReturnType<typeof createFakeCentrePoint>, n: number, record: Partial<FakeDeliveryRecord> = {}) {
  const deliveryId = record.deliveryId ?? `0f9a3fde-8baf-4c83-9591-${String(n).padStart(12, "0")}`;
  fake.recordDelivery({ event: "upload", body: uploadBodyFor(n), deliveryId, ...record });
  return deliveryId;
}

/** Every row of every table of a Durable Object's SQLite, as text (blobs decoded as UTF-8). */
export function dumpTables(stub: DurableObjectStub): Promise<string> {
  return runInDurableObject(stub, (_i, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
      .toArray()
      .map((t) => t.name);
    const text = (v: SqlStorageValue) => (v instanceof ArrayBuffer ? new TextDecoder().decode(v) : String(v));
    return tables
      .map(
        (t) =>
          `${t}: ${sql
            .exec(`SELECT * FROM "${t}"`)
            .toArray()
            .map((r) => Object.values(r).map(text).join(" | "))
            .join("\n")}`,
      )
      .join("\n");
  });
}
