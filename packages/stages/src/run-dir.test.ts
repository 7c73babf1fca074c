/** removeRunDir: a stage's scratch directory goes, and a failure to remove it never fails or masks the stage. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeRunDir } from './run-dir.js';
import type { StageLogger } from './ports.js';

let tmp: string;
beforeEach(() => (tmp = mkdtempSync(join(tmpdir(), 'run-dir-'))));
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

/** Collects what a stage would log (the port's contract; the service passes pino). */
function recorder() {
  const warnings: { obj: object; msg?: string }[] = [];
  const logger: StageLogger = { info: () => {}, warn: (obj, msg) => warnings.push({ obj, ...(msg ? { msg } : {}) }), error: () => {} };
  return { logger, warnings };
}

test('removes the run directory with everything in it, and a missing one is no error', () => {
  const dir = join(tmp, 'job-1');
  mkdirSync(join(dir, 'composed'), { recursive: true });
  writeFileSync(join(dir, 'composed', 'a.png'), 'x');
  const { logger, warnings } = recorder();
  removeRunDir(dir, logger);
  expect(existsSync(dir)).toBe(false);
  removeRunDir(dir, logger);
  expect(warnings).toEqual([]);
});

test('a directory that cannot be removed is logged with its path and reason, not thrown', () => {
  // a path under a file: rmSync fails with ENOTDIR even for root (which permissions would not stop)
  const file = join(tmp, 'not-a-dir');
  writeFileSync(file, 'x');
  const { logger, warnings } = recorder();
  expect(() => removeRunDir(join(file, 'job-1'), logger)).not.toThrow();
  expect(warnings).toHaveLength(1);
  expect(warnings[0]!.obj).toMatchObject({ dir: join(file, 'job-1'), err: expect.stringContaining('ENOTDIR') });
  expect(warnings[0]!.msg).toMatch(/could not remove the run directory/);
});
