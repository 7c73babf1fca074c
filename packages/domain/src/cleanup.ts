/**
 * Cleanup that never hides the failure it cleans up after. A `finally` that releases sessions and removes
 * files can fail too (a session already released, a file already gone); thrown from `finally`, that second
 * error would replace the one that stopped the run, which is the one the user needs.
 */

/** Errors from cleanup steps that ran while `error` was already on its way out. */
export interface WithSuppressed {
  suppressed?: unknown[];
}

/** A cleanup step; a falsy one (a resource never acquired, `acquired && (() => release())`) is skipped. */
type Step = (() => unknown) | undefined | null | false;

/**
 * Runs every step (each even when an earlier one fails). With `inFlight` (the error that ended the work)
 * the steps' errors are attached to it as `suppressed` and nothing is thrown; without it the first step
 * error is thrown, with any later ones attached to it.
 */
export async function cleanUp(steps: ReadonlyArray<Step>, inFlight?: { error: unknown }): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    if (!step) continue;
    try {
      await step();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length === 0) return;
  const [first, ...rest] = errors;
  const carrier = inFlight ? inFlight.error : first;
  if (carrier !== null && typeof carrier === 'object') {
    const c = carrier as WithSuppressed;
    c.suppressed = [...(c.suppressed ?? []), ...(inFlight ? errors : rest)];
  }
  if (!inFlight) throw first;
}

/** Runs `body`, then `steps` as cleanUp does: a cleanup error never replaces the body's error. */
export async function withCleanup<T>(body: () => Promise<T>, steps: () => ReadonlyArray<Step>): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (error) {
    await cleanUp(steps(), { error });
    throw error;
  }
  await cleanUp(steps());
  return result;
}
