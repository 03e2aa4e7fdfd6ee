/**
 * Takes the longest prefix of `items` whose sizes add up to at most `maxBytes`; a first item larger
 * than the budget is taken alone, so every call makes progress. Memory and message sizes of
 * batches are bounded by bytes, not row counts.
 */
export function takeByBytes<T>(items: readonly T[], sizeOf: (item: T) => number, maxBytes: number): T[] {
  const out: T[] = [];
  let total = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (out.length > 0 && total + size > maxBytes) break;
    out.push(item);
    total += size;
  }
  return out;
}

/** Bytes an alarm run or an RPC batch carries at most (bodies, envelopes, headers): well under the 32 MiB RPC limit and 128 MB of memory. */
export const BATCH_BYTES = 8 * 1024 * 1024;
