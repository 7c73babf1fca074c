/**
 * One error class for every package: a stable `code` that callers branch on, a `message` that names the
 * culprit, an optional `cause`, and `permanent`, whether retrying the same work can ever succeed. Each package
 * declares its codes once, as a table that also answers the retry question:
 *
 *   export const TRAINING_CODES = { BAD_INPUT: { permanent: true }, CANCELLED: { permanent: false } } as const satisfies ErrorCodes;
 *   export class TrainingError extends CodedError<keyof typeof TRAINING_CODES> {
 *     static override readonly codes = TRAINING_CODES;
 *   }
 *
 * The code type is the table's keys, so a code without a declared permanence does not compile.
 */

/** What a code says about retrying. */
export interface CodeInfo {
  /** True when no retry can help (bad input, a damaged artifact): the job fails at once instead of retrying. */
  readonly permanent: boolean;
}

/** A package's code table. */
export type ErrorCodes = Readonly<Record<string, CodeInfo>>;

export class CodedError<C extends string = string> extends Error {
  /** The subclass's code table; every subclass declares its own. */
  static readonly codes: ErrorCodes = {};
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    // the subclass's name (TrainingError, ...): callers and tests match on it
    this.name = new.target.name;
  }

  /**
   * Read from the class's table (a getter, so logs and JSON keep the error's shape). A code missing from the
   * table counts as retryable, like any error that is not coded.
   */
  get permanent(): boolean {
    return (this.constructor as typeof CodedError).codes[this.code]?.permanent ?? false;
  }
}

/** Whether `err` is a CodedError, optionally of one code. */
export const isCodedError = (err: unknown, code?: string): err is CodedError => err instanceof CodedError && (code === undefined || err.code === code);

/** A package's `isXError(err, code?)`: whether `err` is of that class, optionally with one of its codes. */
export function errorGuard<E extends CodedError>(cls: abstract new (...args: never[]) => E): (err: unknown, code?: E['code']) => err is E {
  return (err: unknown, code?: E['code']): err is E => err instanceof cls && (code === undefined || err.code === code);
}
