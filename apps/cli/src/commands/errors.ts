/** An error the CLI reports as one line (bad input); anything else with a `code` and message is reported the same way. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

// How a failure prints (message, code, causes, --debug stacks): one definition, shared with `ort-train`.
export { DEBUG_HINT, debugFromEnv, formatFailure, oneLine } from '@dynasyn/domain';
