import type { z } from 'zod';

/** An environment that does not fit its schema; `problems` names every bad variable, one line each. */
export class EnvError extends Error {
  override readonly name = 'EnvError';
  constructor(readonly problems: string[]) {
    super(`invalid environment: ${problems.join('; ')}`);
  }
}

/** Validates `source` (process.env) against an app's schema, once; throws an EnvError naming every problem. */
export function parseEnvironment<S extends z.ZodType>(schema: S, source: Record<string, string | undefined>): z.output<S> {
  const r = schema.safeParse(source);
  if (!r.success) throw new EnvError(r.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`));
  return r.data;
}
