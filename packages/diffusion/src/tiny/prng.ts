/**
 * The seeded random numbers behind the tiny bundle's weights. Each parameter draws from its own stream,
 * seeded from (bundle seed, model, parameter name), so a weight does not change when another layer is
 * added or reordered, and the same seed gives byte-identical files on every platform:
 *
 * - stream seed: FNV-1a (32 bit) of the UTF-8 text `${seed}/${model}/${parameter}`;
 * - uniforms: mulberry32 (Tommy Ettinger's 32-bit generator), u in [0, 1) with 2^-32 resolution;
 * - normals: Box-Muller, two per pair of uniforms (see normalNumbers).
 *
 * The integer steps are exact everywhere; Math.log/Math.cos are V8's fdlibm ports, so every Node version
 * we run gives the same bits (a different JS engine could differ in the last ulp).
 */

// Module-level bindings: inside jest's vm context every global lookup (Math) goes through an interceptor,
// which made the hot loops below ten times slower.
const { imul, sqrt, log, cos, sin, PI } = Math;

/** FNV-1a hash of a string's UTF-8 bytes, as an unsigned 32-bit integer. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: returns a function yielding uniforms in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` draws from N(0, std^2) of the stream named `key`, as JS numbers (before rounding to float32). Each
 * pair of uniforms (u1, u2) gives two normals, r cos(2 pi u2) then r sin(2 pi u2), r = sqrt(-2 ln(1 - u1)).
 */
export function normalNumbers(key: string, n: number, std: number): number[] {
  const uniform = mulberry32(fnv1a32(key));
  const out: number[] = []; // grown by push: `new Array(n)` of this size would be a slow dictionary array
  for (let i = 0; i < n; i += 2) {
    const r = std * sqrt(-2 * log(1 - uniform()));
    const angle = 2 * PI * uniform();
    out.push(r * cos(angle));
    if (i + 1 < n) out.push(r * sin(angle));
  }
  return out;
}

/** `n` draws from N(0, std^2) of the stream named `key`, rounded to float32. */
export function normals(key: string, n: number, std: number): Float32Array {
  return Float32Array.from(normalNumbers(key, n, std));
}
