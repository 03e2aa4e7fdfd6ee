/**
 * How much background work of a ledger (integrity runs above all) may take at a time: one slice
 * reads at most `INTEGRITY_SLICE` records and bytes, synchronously, and the alarm pauses
 * `JOB_PACE_MS` after each run that did a slice, so a long job takes a bounded share of the
 * object's time and `record()` calls are served between slices. Loaded by the Worker and by the
 * lifecycle benchmark (Node), which reports `record()` latency under these settings: no imports.
 */

/** Records and payload bytes of one integrity slice. */
export const INTEGRITY_SLICE = { rows: 128, bytes: 1024 * 1024 } as const;

/** Pause after an alarm run that did a slice of background work, ms. */
export const JOB_PACE_MS = 40;
