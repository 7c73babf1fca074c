/** The logging surface the queue package needs; pino and console both fit. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Discards everything: the default when no logger is handed in. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
