/** A seeded pseudo-random source: same seed, same sequence (mulberry32; not for secrets). */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both inclusive. */
  int(min: number, max: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** `length` lower-case hex digits. */
  hex(length: number): string;
}

/** Creates the seeded generator used for every simulated value. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick: (items) => items[int(0, items.length - 1)]!,
    hex: (length) => Array.from({ length }, () => int(0, 15).toString(16)).join(""),
  };
}

/** A 36-character id laid out like a GUID (8-4-4-4-12), as CentrePoint's delivery ids are. */
export function guidLike(rng: Rng): string {
  return [8, 4, 4, 4, 12].map((n) => rng.hex(n)).join("-");
}
