import { DEBUG_HINT, debugFromEnv, formatFailure } from './errors.js';

class CodedError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CodedError';
  }
}

/** A failure four levels deep: coded error -> network error -> AggregateError of two attempts (one with its own cause). */
function nestedFailure() {
  const v6 = Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' });
  const v4 = new Error('connect ECONNREFUSED 127.0.0.1:5432', { cause: new Error('socket closed by peer') });
  const both = new AggregateError([v6, v4], '');
  const fetchFailed = new TypeError('fetch failed', { cause: both });
  return new CodedError('PROVIDER_NETWORK', 'chat endpoint http://localhost:5432 could not be reached\nafter 4 attempts', { cause: fetchFailed });
}

const atLines = (text: string) => text.split('\n').filter((l) => /^\s+at /.test(l));

test('without debug: the message with its code, one short line per cause and per aggregated error, then the hint', () => {
  expect(formatFailure(nestedFailure(), { prefix: 'dynasyn', debug: false, hint: true })).toBe([
    'dynasyn: chat endpoint http://localhost:5432 could not be reached [PROVIDER_NETWORK]',
    '  caused by: TypeError: fetch failed',
    '  caused by: AggregateError',
    '    error 1 of 2: Error [ECONNREFUSED]: connect ECONNREFUSED ::1:5432',
    '    error 2 of 2: Error: connect ECONNREFUSED 127.0.0.1:5432',
    '      caused by: Error: socket closed by peer',
    DEBUG_HINT,
    '',
  ].join('\n'));
});

test('with debug: every error whole (name, code, all message lines) followed by its own stack', () => {
  const out = formatFailure(nestedFailure(), { prefix: 'dynasyn', debug: true, hint: true });
  expect(out).toMatch(/^dynasyn: CodedError \[PROVIDER_NETWORK\]: chat endpoint .* could not be reached\n\s+after 4 attempts\n\s+at nestedFailure /);
  for (const line of ['caused by: TypeError: fetch failed', 'caused by: AggregateError', 'error 1 of 2: Error [ECONNREFUSED]: connect ECONNREFUSED ::1:5432', 'caused by: Error: socket closed by peer']) {
    const after = out.slice(out.indexOf(line) + line.length).split('\n');
    expect(out).toContain(line);
    expect(after[1]).toMatch(/^\s+at /); // its stack follows
  }
  expect(atLines(out).length).toBeGreaterThanOrEqual(6);
  expect(out).not.toContain(DEBUG_HINT);
});

test('a cause that is no Error, a cycle and an error without a message are still reported', () => {
  const a = new Error('outer', { cause: { status: 503, body: 'busy' } });
  expect(formatFailure(a, { prefix: 'x', debug: false, hint: false })).toBe('x: outer\n  caused by: {"status":503,"body":"busy"}\n');
  const loop = new Error('loop');
  const inner = new Error('inner', { cause: loop });
  (loop as { cause?: unknown }).cause = inner;
  expect(formatFailure(loop, { prefix: 'x', debug: false, hint: false })).toBe('x: loop\n  caused by: Error: inner\n  caused by: (the same error again: a cycle)\n');
  expect(formatFailure(new AggregateError([], ''), { prefix: 'x', debug: false, hint: false })).toBe('x: AggregateError\n');
  expect(formatFailure('plain string', { prefix: 'x', debug: false, hint: false })).toBe('x: plain string\n');
});

test('a multi-line message is one line without debug (a Prisma-style reason last) and whole with it', () => {
  const prisma = new Error('Invalid `db.tenant.create()` invocation:\n\n\n  Unique constraint failed on the fields: (`name`)');
  expect(formatFailure(prisma, { prefix: 'dynasyn', debug: false, hint: false })).toBe('dynasyn: Invalid `db.tenant.create()` invocation: Unique constraint failed on the fields: (`name`)\n');
  expect(formatFailure(prisma, { prefix: 'dynasyn', debug: true, hint: false })).toContain('\n      Unique constraint failed');
});

test('DYNASYN_DEBUG: 1, true or any word turns debug on; empty, 0 and false do not', () => {
  for (const v of ['1', 'true', 'yes']) expect(debugFromEnv({ DYNASYN_DEBUG: v })).toBe(true);
  for (const v of [undefined, '', '0', 'false', 'FALSE']) expect(debugFromEnv({ DYNASYN_DEBUG: v })).toBe(false);
});

test('a cleanup failure attached to the error in flight (dynasyn cleanUp) is printed beneath it, never instead of it', async () => {
  const { cleanUp } = await import('@dynasyn/dynasyn');
  const failure = Object.assign(new Error('onnxruntime could not load phase2.onnx: protobuf parsing failed'), { code: 'BAD_MODEL' });
  await cleanUp([() => { throw new Error('Session already disposed.'); }], { error: failure });
  expect(formatFailure(failure, { prefix: 'dynasyn', debug: false, hint: false })).toBe([
    'dynasyn: onnxruntime could not load phase2.onnx: protobuf parsing failed [BAD_MODEL]',
    '    then, while cleaning up: Error: Session already disposed.',
    '',
  ].join('\n'));
});
