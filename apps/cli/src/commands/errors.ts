/** An error the CLI reports as one line (bad input); anything else with a `code` and message is reported the same way. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** One line for the user: the message of a known error, else the error's own text without a stack. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.trim() || 'unknown error';
}
