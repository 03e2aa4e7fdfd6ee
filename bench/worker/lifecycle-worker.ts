/**
 * The relay as `npm run bench:lifecycle` runs it: the project's Worker unchanged, plus one
 * bench-only way to fill a ledger fast. `BenchLedger` is the Ledger class with a `seed` method
 * that records deliveries cloned from a template through the ledger's own `record()` (the same
 * transaction, hash chain, counters and job scheduling as ingress), and `POST /bench/seed` calls
 * it. The bench's wrangler configuration binds LEDGER to this class; nothing here is deployed.
 */
import worker, { Outbox, SignInGuard } from "../../src/index";
import type { Bindings } from "../../src/env";
import { Ledger } from "../../src/ledger/ledger";
import type { RecordInput } from "../../src/ledger/types";

export { Outbox, SignInGuard };

/** What `POST /bench/seed` takes: a template record, and which copies of it to record. */
export interface SeedRequest {
  source: string;
  /** A recorded delivery (as GET /admin/deliveries/:source/:id shows it): its headers, body (base64), envelope and kind. */
  template: {
    kind: string;
    event: string | null;
    subject: string | null;
    sourceIp: string | null;
    headers: Record<string, string>;
    body: string;
    envelope: string;
  };
  /** Copies `from`..`from + count - 1`, copy i received at `startAt + i * spacingMs` with delivery id `<prefix>-<i>`. */
  from: number;
  count: number;
  startAt: number;
  spacingMs: number;
  prefix: string;
}

/** The Ledger with the bench's seeding method. */
export class BenchLedger extends Ledger {
  /** Records the copies one by one through `record()`; each copy's body and envelope name its own upload id, so no two bodies are equal. */
  async seed(r: SeedRequest): Promise<number> {
    const body = atob(r.template.body);
    const uploadId = /"uploadId"\s*:\s*"?([^",}]+)/.exec(body)?.[1] ?? "";
    const encoder = new TextEncoder();
    for (let i = r.from; i < r.from + r.count; i++) {
      const id = `${r.prefix}-${i}`;
      const mine = `${uploadId}${i}`;
      const input: RecordInput = {
        source: r.source,
        deliveryId: id,
        idDerived: false,
        event: r.template.event,
        kind: r.template.kind,
        subject: r.template.subject,
        attention: null,
        receivedAt: r.startAt + i * r.spacingMs,
        sourceIp: r.template.sourceIp,
        headers: { ...r.template.headers, "x-actigraph-delivery": id },
        body: encoder.encode(body.split(uploadId).join(mine)),
        envelope: r.template.envelope.split(uploadId).join(mine),
        targets: [],
        searchKeys: [mine],
      };
      await this.record(input);
    }
    return r.count;
  }
}

export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname !== "/bench/seed") return worker.fetch(request, env, ctx);
    if (request.method !== "POST" || !env.ADMIN_TOKEN || request.headers.get("authorization") !== `Bearer ${env.ADMIN_TOKEN}`)
      return new Response("no", { status: 403 });
    const r = (await request.json()) as SeedRequest;
    const ledger = env.LEDGER.get(env.LEDGER.idFromName(r.source)) as unknown as DurableObjectStub<BenchLedger>;
    return Response.json({ recorded: await ledger.seed(r) });
  },
  scheduled: worker.scheduled,
} satisfies ExportedHandler<Bindings>;
