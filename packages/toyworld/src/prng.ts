/**
 * The world's seeded random numbers. Integer arithmetic only (Math.imul, shifts), so a seed gives the same
 * stream on every machine and Node version:
 *
 * - a text seed (or a numeric seed's decimal text) is hashed with FNV-1a (32 bit) to a state;
 * - uniforms come from mulberry32, u in [0, 1) with 2^-32 resolution;
 * - `fork(label)` starts an independent stream from (this stream's seed, label): scene `i` of a data set is
 *   `createRng(`${seed}/${i}`)`, so any scene is reproducible without drawing the ones before it.
 */

const { imul } = Math;

/** FNV-1a hash of a string's UTF-16 code units folded to bytes, as an unsigned 32-bit integer. */
export function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h = imul(h ^ (c & 0xff), 0x01000193) >>> 0;
    if (c > 0xff) h = imul(h ^ (c >>> 8), 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A seeded stream of uniforms with the small helpers the sampler and the captioner need. */
export interface Rng {
  /** The seed text this stream was made from (forks append `/label`). */
  readonly seed: string;
  /** A uniform in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** A uniform in [lo, hi). */
  range(lo: number, hi: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** An independent stream named by this stream's seed and `label`. */
  fork(label: string | number): Rng;
}

/** A stream from a number or a text seed; the same seed always gives the same stream. */
export function createRng(seed: number | string): Rng {
  const seedText = String(seed);
  let a = hashText(seedText);
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed: seedText,
    next,
    int: (n) => Math.floor(next() * n),
    range: (lo, hi) => lo + (hi - lo) * next(),
    chance: (p) => next() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('pick from an empty list');
      return items[Math.floor(next() * items.length)]!;
    },
    fork: (label) => createRng(`${seedText}/${label}`),
  };
}

/** A stream from an Rng or a seed: the APIs take either. */
export function toRng(rngOrSeed: Rng | number | string): Rng {
  return typeof rngOrSeed === 'object' ? rngOrSeed : createRng(rngOrSeed);
}
