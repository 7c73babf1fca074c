/** The value shapes the pieces are built from: how an environment string becomes a typed setting. */
import { z } from 'zod';

/** For z.preprocess: the empty string counts as unset. */
export const emptyIsUnset = (v: unknown) => (v === '' ? undefined : v);

/** An optional variable; set to the empty string it counts as unset (compose and k8s write `X: ""`). */
export function optional<T extends z.ZodType>(schema: T) {
  return z.preprocess(emptyIsUnset, schema.optional());
}

/** `true`/`1` or `false`/`0`; unset or empty: `byDefault`. */
export function flag(byDefault: boolean) {
  return z
    .enum(['true', 'false', '1', '0', ''])
    .optional()
    .transform((v) => (v === undefined || v === '' ? byDefault : v === 'true' || v === '1'));
}

/** A whole number from `min` to `max`, written as a string; unset or empty: `byDefault`. */
export function count(min: number, byDefault: number, max = Number.MAX_SAFE_INTEGER) {
  return z.preprocess(emptyIsUnset, z.coerce.number().int().min(min).max(max).default(byDefault));
}

/** A positive number of seconds; unset or empty: `byDefault`. */
export function seconds(byDefault: number) {
  return z.preprocess(emptyIsUnset, z.coerce.number().positive().default(byDefault));
}
