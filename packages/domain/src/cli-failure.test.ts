import { DEBUG_HINT, debugFromEnv, formatFailure } from './cli-failure.js';
import { CodedError } from './coded-error.js';

/** A package's coded error, as ort-training's OrtTrainingError is declared. */
class OrtTrainingError extends CodedError<'MISSING_EXTERNAL_DATA'> {
  static override readonly codes = { MISSING_EXTERNAL_DATA: { permanent: true } };
}

/** A failure three levels deep: a coded error -> an I/O error -> an AggregateError of two attempts. */
function nestedFailure() {
  const attempts = new AggregateError([Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }), new Error('short read')], 'both reads failed');
  const io = new Error('cannot read unet.onnx.data', { cause: attempts });
  return new OrtTrainingError('MISSING_EXTERNAL_DATA', 'tensor w: external data unreadable', { cause: io });
}

test('without debug: message and code, one short line per cause and per aggregated error, then the hint', () => {
  expect(formatFailure(nestedFailure(), { prefix: 'ort-train', debug: false, hint: true })).toBe(
    [
      'ort-train: tensor w: external data unreadable [MISSING_EXTERNAL_DATA]',
      '  caused by: Error: cannot read unet.onnx.data',
      '  caused by: AggregateError: both reads failed',
      '    error 1 of 2: Error [EIO]: EIO: i/o error, read',
      '    error 2 of 2: Error: short read',
      DEBUG_HINT,
      '',
    ].join('\n'),
  );
});

test('with debug: each error with its name and code, followed by its own stack', () => {
  const out = formatFailure(nestedFailure(), { prefix: 'ort-train', debug: true, hint: true });
  const lines = out.split('\n');
  const headers = lines.filter((l) => !/^\s+at /.test(l) && l);
  expect(headers).toEqual([
    'ort-train: OrtTrainingError [MISSING_EXTERNAL_DATA]: tensor w: external data unreadable',
    '  caused by: Error: cannot read unet.onnx.data',
    '  caused by: AggregateError: both reads failed',
    '    error 1 of 2: Error [EIO]: EIO: i/o error, read',
    '    error 2 of 2: Error: short read',
  ]);
  for (const h of headers) expect(lines[lines.indexOf(h) + 1]).toMatch(/^\s+at /);
});

test('DYNASYN_DEBUG=1 turns debug on; 0 or empty does not', () => {
  expect(debugFromEnv({ DYNASYN_DEBUG: '1' })).toBe(true);
  expect(debugFromEnv({ DYNASYN_DEBUG: '0' })).toBe(false);
  expect(debugFromEnv({})).toBe(false);
});

test('a cause that is no Error, a cycle and an error without a message are still reported', () => {
  const a = new Error('outer', { cause: { status: 503, body: 'busy' } });
  expect(formatFailure(a, { prefix: 'x', debug: false, hint: false })).toBe('x: outer\n  caused by: {"status":503,"body":"busy"}\n');
  const loop = new Error('loop');
  const inner = new Error('inner', { cause: loop });
  (loop as { cause?: unknown }).cause = inner;
  expect(formatFailure(loop, { prefix: 'x', debug: false, hint: false })).toBe(
    'x: loop\n  caused by: Error: inner\n  caused by: (the same error again: a cycle)\n',
  );
  expect(formatFailure(new AggregateError([], ''), { prefix: 'x', debug: false, hint: false })).toBe('x: AggregateError\n');
  expect(formatFailure('plain string', { prefix: 'x', debug: false, hint: false })).toBe('x: plain string\n');
});

test('a multi-line message is one line without debug (a Prisma-style reason last) and whole with it', () => {
  const prisma = new Error('Invalid `db.tenant.create()` invocation:\n\n\n  Unique constraint failed on the fields: (`name`)');
  expect(formatFailure(prisma, { prefix: 'dynasyn', debug: false, hint: false })).toBe(
    'dynasyn: Invalid `db.tenant.create()` invocation: Unique constraint failed on the fields: (`name`)\n',
  );
  expect(formatFailure(prisma, { prefix: 'dynasyn', debug: true, hint: false })).toContain('\n      Unique constraint failed');
});
