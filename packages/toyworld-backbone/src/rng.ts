/**
 * Seeded randomness for training: every draw is a function of (seed, stream, index), so a batch is a
 * function of (seed, step) and a resumed run draws what the uninterrupted run would have drawn.
 */

/** FNV-1a of a string: the key of a stream. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32 uniforms in [0, 1) and standard normals (Box-Muller) from one 32-bit state. */
export class Rng {
  private state: number;
  private spare: number | undefined;
  constructor(key: string) {
    this.state = hash32(key);
  }
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), this.state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.uniform(),
      v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }
}

/** Milliseconds since the previous call (or creation), rounded: per-part step timings for the log. */
export function stopwatch(): () => number {
  let last = performance.now();
  return () => {
    const now = performance.now(),
      ms = Math.round(now - last);
    last = now;
    return ms;
  };
}
