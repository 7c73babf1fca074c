/**
 * The one logger factory of every process (API, stage workers, `dynasyn serve`): pino, one JSON line per event
 * on stderr, so that stdout stays the command's own output (the CLI prints results there).
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** pino's levels, most to least severe, and `silent`; LOG_LEVEL takes exactly these. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** The process that logs (`api`, `worker-train`, `serve`): every line carries it as `name`. */
  name: string;
  /** Least severe level written; default `info`. */
  level?: LogLevel;
  /** Where the lines go; default stderr, written synchronously so that nothing is lost on process.exit. */
  destination?: DestinationStream;
}

export function createLogger({ name, level = 'info', destination }: LoggerOptions): Logger {
  return pino({ name, level }, destination ?? pino.destination({ dest: 2, sync: true }));
}
