import { Writable } from 'node:stream';
import { LOG_LEVELS, createLogger, type LogLevel } from './index.js';

function capture(level?: LogLevel) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger({ name: 'worker-test', ...(level ? { level } : {}), destination }) };
}

test('one JSON line per event with the process name, the level, the message and the fields', async () => {
  const { lines, logger } = capture();
  logger.info({ personalizationId: 'p1' }, 'stage started');
  await new Promise((r) => setImmediate(r));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ name: 'worker-test', level: 30, msg: 'stage started', personalizationId: 'p1' });
  expect(typeof lines[0]!.time).toBe('number');
});

test('the level filters: debug is dropped at info, trace is written at trace, nothing at silent', async () => {
  const info = capture();
  info.logger.debug({}, 'hidden');
  info.logger.warn({}, 'shown');
  const trace = capture('trace');
  trace.logger.trace({}, 'very detailed');
  const silent = capture('silent');
  silent.logger.fatal({}, 'not even this');
  await new Promise((r) => setImmediate(r));
  expect(info.lines.map((l) => l.msg)).toEqual(['shown']);
  expect(trace.lines.map((l) => l.msg)).toEqual(['very detailed']);
  expect(silent.lines).toEqual([]);
});

test('errors under `err` keep their message and stack', async () => {
  const { lines, logger } = capture();
  logger.error({ err: new Error('disk full') }, 'upload failed');
  await new Promise((r) => setImmediate(r));
  expect(lines[0]!.err).toMatchObject({ message: 'disk full', type: 'Error' });
  expect(String((lines[0]!.err as { stack: string }).stack)).toMatch(/disk full\n\s+at /);
});

test('LOG_LEVELS are exactly the levels pino knows (and silent)', () => {
  const { logger } = capture();
  expect([...LOG_LEVELS].sort()).toEqual([...Object.keys(logger.levels.values), 'silent'].sort());
});
