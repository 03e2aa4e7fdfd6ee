import type { IncomingMessage } from "node:http";

/** Largest request body the harness's receivers keep: the relay's own ceiling (1 MiB). */
export const MAX_RECEIVED_BYTES = 1024 * 1024;

/**
 * Reads a request's body as UTF-8, keeping at most `max` bytes, then calls `done` with the text and
 * whether the body was larger than that (its text then holds only what was kept).
 */
export function readBody(req: IncomingMessage, done: (body: string, tooLarge: boolean) => void, max = MAX_RECEIVED_BYTES): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (c: Buffer) => {
    size += c.length;
    if (size <= max) chunks.push(c);
  });
  req.on("end", () => done(Buffer.concat(chunks).toString("utf8"), size > max));
}
