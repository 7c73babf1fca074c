/**
 * Polls until `check` returns a truthy value and returns it; past `timeoutMs` it throws naming `what`. The tests'
 * one way to wait for something to happen (a job state, a progress row, a log line) instead of a fixed sleep.
 */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
