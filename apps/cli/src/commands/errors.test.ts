/**
 * The dynasyn CLI prints failures with @dynasyn/domain's formatter (packages/domain/src/cli-failure.test.ts
 * tests it); here: what only the dynasyn side brings, cleanup failures that dynasyn's cleanUp attaches.
 */
import { formatFailure } from './errors.js';

test('a cleanup failure attached to the error in flight (dynasyn cleanUp) is printed beneath it, never instead of it', async () => {
  const { cleanUp } = await import('@dynasyn/dynasyn');
  const failure = Object.assign(new Error('onnxruntime could not load phase2.onnx: protobuf parsing failed'), { code: 'BAD_MODEL' });
  await cleanUp(
    [
      () => {
        throw new Error('Session already disposed.');
      },
    ],
    { error: failure },
  );
  expect(formatFailure(failure, { prefix: 'dynasyn', debug: false, hint: false })).toBe(
    [
      'dynasyn: onnxruntime could not load phase2.onnx: protobuf parsing failed [BAD_MODEL]',
      '    then, while cleaning up: Error: Session already disposed.',
      '',
    ].join('\n'),
  );
});
