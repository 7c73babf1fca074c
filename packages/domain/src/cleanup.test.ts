import { cleanUp, withCleanup } from './cleanup.js';

const fails = (message: string) => () => {
  throw new Error(message);
};

test("a failing cleanup step never replaces the body's error: it is attached to it as suppressed", async () => {
  const released: string[] = [];
  const run = withCleanup(
    async () => {
      throw new Error('the sampler ran out of memory');
    },
    () => [fails('session already released'), () => released.push('judge')],
  );
  const error = await run.then(
    () => undefined,
    (e: unknown) => e as Error & { suppressed?: unknown[] },
  );
  expect(error?.message).toBe('the sampler ran out of memory');
  expect(error?.suppressed?.map((e) => (e as Error).message)).toEqual(['session already released']);
  expect(released).toEqual(['judge']); // the step after the failing one still ran
});

test('with a body that succeeds, the first cleanup failure is thrown, later ones attached to it, and every step runs', async () => {
  const ran: number[] = [];
  const error = await withCleanup(
    async () => 42,
    () => [
      () => ran.push(1),
      fails('first'),
      undefined, // an absent step (a resource never acquired) is skipped
      fails('second'),
      async () => {
        ran.push(4);
      },
    ],
  ).then(
    () => undefined,
    (e: unknown) => e as Error & { suppressed?: unknown[] },
  );
  expect(error?.message).toBe('first');
  expect(error?.suppressed?.map((e) => (e as Error).message)).toEqual(['second']);
  expect(ran).toEqual([1, 4]);
});

test("with nothing failing it returns the body's value after running every step in order", async () => {
  const ran: string[] = [];
  await expect(
    withCleanup(
      async () => 'ok',
      () => [() => ran.push('pipeline'), () => ran.push('judge')],
    ),
  ).resolves.toBe('ok');
  expect(ran).toEqual(['pipeline', 'judge']);
});

test('cleanup errors accumulate on an error already carrying suppressed ones, and a non-object error is left as is', async () => {
  const inFlight = Object.assign(new Error('x'), { suppressed: ['earlier'] });
  await cleanUp([fails('later')], { error: inFlight });
  expect(inFlight.suppressed.map((e) => (typeof e === 'string' ? e : (e as Error).message))).toEqual(['earlier', 'later']);
  await expect(cleanUp([fails('step')], { error: 'a thrown string' })).resolves.toBeUndefined();
});
