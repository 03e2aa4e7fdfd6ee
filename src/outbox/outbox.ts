// TEMPORARY STUB by the lead so ingress tests can run; helper-2 replaces this file entirely.
import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env";
import type { OutboxItem } from "./types";
export class Outbox extends DurableObject<Bindings> {
  async enqueue(_targetId: string, items: OutboxItem[]) { return { inserted: items.length, duplicates: 0 }; }
  async getDelivery(_source: string, _id: string): Promise<unknown> { return null; }
  async resume(): Promise<void> {}
}
