/** Option parsers: a bad value is refused by commander with one line naming the option. */
import { InvalidArgumentError } from 'commander';
import { parseNumber, type NumberRange } from '@dynasyn/domain';

/** @dynasyn/domain's parseNumber, its refusal as commander's (one line naming the option and the value). */
function parser(range: NumberRange) {
  return (value: string): number => {
    try {
      return parseNumber(value, range);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** An integer in [min, max] (max: none when left out). */
export function integer(min: number, max?: number) {
  return parser({ integer: true, min, ...(max === undefined ? {} : { max }) });
}

/** A number in [min, max]; with `aboveMin` in (min, max] (a learning rate: above 0). */
export function float(min: number, max: number, { aboveMin = false } = {}) {
  return parser({ min, max, aboveMin });
}

export function oneOf<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    return value as T;
  };
}
