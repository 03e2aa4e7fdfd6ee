/**
 * The fan-out baseline (issue 17): a Worker that reads the POST, answers 200 and, in `waitUntil`,
 * POSTs the body to every URL of TARGET_URLS (comma-separated) with the delivery id as
 * `webhook-id`. No storage, no retries: the physical limit of fan-out in this runtime, against
 * which the relay's fan-out capacity is compared. Run by `wrangler dev` exactly like the relay.
 */
interface Env {
  TARGET_URLS: string;
}

export default {
  async fetch(request: Request, env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }): Promise<Response> {
    const body = await request.arrayBuffer();
    const id = request.headers.get("x-actigraph-delivery") ?? crypto.randomUUID();
    const send = (url: string) => fetch(url, { method: "POST", headers: { "content-type": "application/json", "webhook-id": id }, body });
    ctx.waitUntil(Promise.allSettled(env.TARGET_URLS.split(",").map(send)));
    return new Response('{"status":"accepted"}', { headers: { "content-type": "application/json" } });
  },
};
