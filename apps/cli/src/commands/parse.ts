/** Option parsers: a bad value is refused by commander with one line naming the option. */
import { InvalidArgumentError } from 'commander';

export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in [${min}, ${max}]`);
    }
    return n;
  };
}

/** A number in [min, max]; with `aboveMin` in (min, max] (a learning rate: above 0). */
export function float(min: number, max: number, { aboveMin = false } = {}) {
  const range = aboveMin ? `above ${min} and at most ${max}` : `in [${min}, ${max}]`;
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || (aboveMin && n === min) || n > max)
      throw new InvalidArgumentError(`expected a number ${range}`);
    return n;
  };
}

export function oneOf<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    return value as T;
  };
}
