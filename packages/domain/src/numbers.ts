/**
 * Numbers typed on a command line, one rule for every command of the project (the `dynasyn` CLI, `toyworld`,
 * and the toy-world training and evaluation scripts): the whole value is a decimal number ("12abc", "", "0x10"
 * and "Infinity" are refused, where Number() or parseInt() would read them), inside a stated range, and an
 * integer where one is asked.
 */

export interface NumberRange {
  /** Lowest value allowed (default: none). */
  min?: number;
  /** Highest value allowed (default: none). */
  max?: number;
  /** `min` itself is refused: (min, max] (a learning rate or a duration: above 0). */
  aboveMin?: boolean;
  /** Only integers (safe ones). */
  integer?: boolean;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** What a range accepts, in words: "an integer of at least 1", "a number above 0 and at most 1". */
export function describeRange({ min, max, aboveMin = false, integer = false }: NumberRange): string {
  const kind = integer ? 'an integer' : 'a number';
  const low = min === undefined ? undefined : aboveMin ? `above ${min}` : `of at least ${min}`;
  if (low && max !== undefined) return aboveMin ? `${kind} ${low} and at most ${max}` : `${kind} from ${min} to ${max}`;
  if (low) return `${kind} ${low}`;
  if (max !== undefined) return `${kind} of at most ${max}`;
  return kind;
}

/** The number `value` holds, or a RangeError saying what was expected ("expected an integer of at least 1"). */
export function parseNumber(value: string | undefined, range: NumberRange = {}): number {
  const text = (value ?? '').trim();
  const n = Number(text);
  const ok =
    DECIMAL.test(text) &&
    Number.isFinite(n) &&
    (!range.integer || Number.isSafeInteger(n)) &&
    (range.min === undefined || n > range.min || (n === range.min && !range.aboveMin)) &&
    (range.max === undefined || n <= range.max);
  if (!ok) throw new RangeError(`expected ${describeRange(range)}`);
  return n;
}

/** parseNumber for a script's `--name value`: the error names the option and the value given. */
export function numberOption(name: string, value: string | undefined, range: NumberRange = {}): number {
  try {
    return parseNumber(value, range);
  } catch {
    throw new RangeError(`--${name} must be ${describeRange(range)}, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
  }
}
