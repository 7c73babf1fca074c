/** An error the CLI reports as one line (bad input); anything else with a `code` and message is reported the same way. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** One line for the user: the message of a known error, else the error's own text without a stack. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const lines = msg.split('\n').map((l) => l.trim()).filter(Boolean);
  if (!lines.length) return 'unknown error';
  // Messages like Prisma's ("Invalid `x()` invocation:" ... the reason) put the reason last.
  return lines[0]!.endsWith(':') && lines.length > 1 ? `${lines[0]} ${lines[lines.length - 1]}` : lines[0]!;
}
