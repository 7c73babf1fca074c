/**
 * Seeded Gaussian random numbers, specified exactly so that a seed reproduces an image on any machine
 * and another implementation (Python, Rust, a GPU kernel) can reproduce the stream bit for bit.
 *
 * Algorithm (all integer arithmetic is modulo 2^32 or 2^64, unsigned):
 *
 * 1. Seed: a 64-bit unsigned integer S (a JS number must be a non-negative safe integer; a bigint any
 *    value in [0, 2^64)).
 * 2. splitmix64(state): state += 0x9E3779B97F4A7C15; z = state;
 *    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31).
 * 3. Generator state: with state = S, a = splitmix64(), b = splitmix64(); the xoshiro128** words are
 *    s0 = low32(a), s1 = high32(a), s2 = low32(b), s3 = high32(b). (If all four are zero, s0 = 1.)
 * 4. next32() is xoshiro128** 1.1 (Blackman & Vigna): result = rotl(s1 * 5, 7) * 9; t = s1 << 9;
 *    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11); return result.
 * 5. uniform() = ((next32() >>> 5) * 2^26 + (next32() >>> 6)) / 2^53, a double in [0, 1) on the
 *    53-bit grid (the first word supplies the high 27 bits).
 * 6. Normals come in Box-Muller pairs: u1 = 1 - uniform() (in (0, 1], so the log is finite),
 *    u2 = uniform(); r = sqrt(-2 ln u1), theta = 2 pi u2; the stream yields r cos(theta), then
 *    r sin(theta). normal() and fill() read this one stream in order (fill(n) equals n calls of
 *    normal(), rounded to float32); uniform()/uniformInt() draw fresh words and leave a pending
 *    r sin(theta) in place.
 * 7. uniformInt(n), 1 <= n <= 2^32: x = next32() until x < 2^32 - (2^32 mod n); return x mod n
 *    (rejection, so every value is exactly equally likely).
 * 8. fork(label): a child generator whose seed is
 *    mix64(S' ^ fnv1a64(utf8(label))), where S' is this generator's seed, fnv1a64 is 64-bit FNV-1a
 *    (offset 0xCBF29CE484222325, prime 0x100000001B3) and mix64 is the output function of step 2
 *    without the increment. It depends only on the seed and the label, never on how much was drawn,
 *    so per-sample streams stay the same whatever the batch size or order.
 *
 * Platform independence: the integer steps are exact. ln, cos, sin and sqrt are evaluated in float64
 * by V8's bundled fdlibm port (not the system libm), so Node gives the same doubles on every OS and
 * CPU; another runtime needs fdlibm-equivalent functions for bit-exact doubles, and float32 outputs
 * agree even with functions that differ in the last double ulp, except in vanishingly rare ties.
 */
import { DiffusionError } from './errors.js';

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;
const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;
const TWO_PI = 2 * Math.PI;

/** The splitmix64 output function (step 2 without the increment). */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

function fnv1a64(text: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & MASK64;
  }
  return h;
}

function toSeed64(seed: number | bigint): bigint {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed > MASK64) throw new DiffusionError('BAD_ARGUMENT', `RNG seed ${seed} is outside [0, 2^64)`);
    return seed;
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new DiffusionError('BAD_ARGUMENT', `RNG seed ${seed} must be a non-negative safe integer (or a bigint below 2^64)`);
  }
  return BigInt(seed);
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** Seeded generator of standard normal (and uniform) numbers; see the file header for the exact algorithm. */
export class GaussianRng {
  /** The 64-bit seed this generator was created from (forks derive theirs from it). */
  readonly seed: bigint;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** r sin(theta) of the last Box-Muller pair, until it is read. */
  private spare: number | undefined;

  constructor(seed: number | bigint) {
    this.seed = toSeed64(seed);
    let state = this.seed;
    const next = (): bigint => {
      state = (state + GOLDEN_GAMMA) & MASK64;
      return mix64(state);
    };
    const a = next();
    const b = next();
    this.s0 = Number(a & 0xffffffffn) | 0;
    this.s1 = Number(a >> 32n) | 0;
    this.s2 = Number(b & 0xffffffffn) | 0;
    this.s3 = Number(b >> 32n) | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next 32-bit word of xoshiro128**, as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * TWO_POW_26 + lo) / TWO_POW_53;
  }

  /** Uniform integer in [0, n), n an integer in [1, 2^32]; unbiased (rejection sampling). */
  uniformInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x100000000) {
      throw new DiffusionError('BAD_ARGUMENT', `uniformInt bound ${n} must be an integer in [1, 2^32]`);
    }
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** One standard normal number (float64). */
  normal(): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return z;
    }
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = TWO_PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** `n` standard normal numbers as float32 (e.g. initial latents, step noise). */
  fill(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0) throw new DiffusionError('BAD_ARGUMENT', `fill length ${n} must be a non-negative integer`);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }

  /** An independent generator derived from this one's seed and `label` (e.g. `sample:3`), whatever was drawn. */
  fork(label: string | number): GaussianRng {
    return new GaussianRng(mix64(this.seed ^ fnv1a64(String(label))));
  }
}
