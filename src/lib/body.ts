import { err, ok, type Result } from "./result";

/**
 * Reads a request body as bytes, refusing more than `limit` bytes without buffering them:
 * a declared Content-Length over the limit is refused before reading, and a chunked body
 * is cut off as soon as it passes the limit.
 */
export async function readBodyLimited(request: Request, limit: number): Promise<Result<Uint8Array, "too_large">> {
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) return err("too_large");
  if (!request.body) return ok(new Uint8Array(0));
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return err("too_large");
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) (out.set(c, offset), (offset += c.byteLength));
  return ok(out);
}
