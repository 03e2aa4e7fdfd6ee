/**
 * The bench's baseline: a Worker that reads the request body and answers 200 with a small JSON
 * body, nothing else. Run by `wrangler dev` exactly like the relay, so that the ratio of the two
 * throughputs isolates what the relay does per request (verify, record, answer).
 */
export default {
  async fetch(request: Request): Promise<Response> {
    await request.arrayBuffer();
    return new Response('{"status":"accepted"}', { headers: { "content-type": "application/json" } });
  },
};
