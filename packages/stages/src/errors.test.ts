/**
 * Retry decisions come from each package's code table (CodedError.permanent). These tests pin that nothing
 * changed for the codes that existed when the decision was a string set here, and that every coded error
 * the stages can meet declares a permanence for each code it is thrown with.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CodedError } from '@dynasyn/domain';
import { DbError } from '@dynasyn/db';
import { DiffusionError } from '@dynasyn/diffusion';
import { ArtifactError, AugmentationError, InputError, TrainingError } from '@dynasyn/dynasyn';
import { ImagingError } from '@dynasyn/imaging';
import { OrtTrainingError } from '@dynasyn/ort-training';
import { StorageError } from '@dynasyn/storage';
import { WebhookError } from '@dynasyn/webhooks';
import { classify, PermanentStageError } from './errors.js';

/** packages/stages/src/errors.ts PERMANENT_CODES before the tables: any error with one of these codes failed for good. */
const PERMANENT_BEFORE_TABLES = new Set([
  'UNREADABLE_IMAGE',
  'UNREADABLE_MASK',
  'SUBJECT_COUNT',
  'MASK_SIZE_MISMATCH',
  'EMPTY_MASK',
  'MASK_COVERS_IMAGE',
  'MASKS_OVERLAP',
  'BAD_CLASS_WORD',
  'BAD_OPTION',
  'BAD_ARTIFACT',
  'ARTIFACT_MISMATCH',
  'BAD_MODEL',
  'BAD_CHECKPOINT',
  'BAD_PROMPT',
  'BAD_INPUT',
  'BAD_ARGUMENT',
]);

/**
 * Codes that were retried under the string set although no retry can change them (a bundle or image that is
 * what it is, a storage key or URL that is malformed, a provider that is not configured, a webhook address
 * that is forbidden): made permanent with the tables, so a bad bundle fails once instead of three times.
 */
const PERMANENT_SINCE_TABLES = new Set([
  'BAD_BUNDLE',
  'BAD_CONFIG',
  'UNSUPPORTED',
  'NOT_AN_IMAGE',
  'CORRUPT_IMAGE',
  'BAD_KEY',
  'BAD_URL',
  'NOT_CONFIGURED',
  'FORBIDDEN_ADDRESS',
  // a write of an attempt the reconciler took over (issue 12's fence): no retry of that attempt may write
  'EPOCH_SUPERSEDED',
]);

const CODED: Record<string, typeof CodedError<string>> = {
  DbError,
  DiffusionError,
  ArtifactError,
  AugmentationError,
  InputError,
  TrainingError,
  ImagingError,
  OrtTrainingError,
  StorageError,
  WebhookError,
};

test.each(Object.entries(CODED))('%s declares its own code table, a permanence for every code', (_name, cls) => {
  expect(Object.hasOwn(cls, 'codes')).toBe(true);
  const entries = Object.entries(cls.codes);
  expect(entries.length).toBeGreaterThan(0);
  for (const [, info] of entries) expect(typeof info.permanent).toBe('boolean');
});

test('a code is permanent in its table exactly when the old string set held it, or it was made permanent since', () => {
  for (const [name, cls] of Object.entries(CODED)) {
    for (const code of Object.keys(cls.codes)) {
      const err = new cls(code, 'm');
      expect({ name, code, permanent: classify(err).permanent }).toEqual({
        name,
        code,
        permanent: PERMANENT_BEFORE_TABLES.has(code) || PERMANENT_SINCE_TABLES.has(code),
      });
    }
  }
  const declared = new Set(Object.values(CODED).flatMap((cls) => Object.keys(cls.codes)));
  expect([...PERMANENT_BEFORE_TABLES].filter((code) => !declared.has(code))).toEqual([]);
});

test('classify: a PermanentStageError is permanent whatever its code; errors that are not coded are retried', () => {
  expect(classify(new PermanentStageError('STAGE_ORDER', 'gsa ran before augment'))).toEqual({
    code: 'STAGE_ORDER',
    message: 'gsa ran before augment',
    permanent: true,
  });
  expect(classify(new TrainingError('BAD_CHECKPOINT', 'another run'))).toEqual({ code: 'BAD_CHECKPOINT', message: 'another run', permanent: true });
  expect(classify(new StorageError('UNAVAILABLE', 'endpoint down')).permanent).toBe(false);
  expect(classify(Object.assign(new Error('read failed'), { code: 'EIO' }))).toEqual({ code: 'EIO', message: 'read failed', permanent: false });
  expect(classify('boom')).toEqual({ code: 'INTERNAL', message: 'boom', permanent: false });
});

/** Every non-test source file of the workspace. */
function sources(): { file: string; text: string }[] {
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  const out: { file: string; text: string }[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory() && !['node_modules', 'dist', 'generated', 'testing'].includes(e.name)) walk(p);
      else if (e.isFile() && p.endsWith('.ts') && !/\.(int\.)?test\.ts$|\.d\.ts$/.test(p))
        out.push({ file: p.slice(root.length), text: readFileSync(p, 'utf8') });
    }
  };
  for (const top of ['packages', 'apps']) {
    for (const d of readdirSync(join(root, top), { withFileTypes: true }))
      if (d.isDirectory() && existsSync(join(root, top, d.name, 'src'))) walk(join(root, top, d.name, 'src'));
  }
  // offline tools whose errors never reach a stage: the toy world's packages and `dynasyn evaluate`
  return out.filter(({ file }) => !/^packages\/toyworld|\/src\/evaluate\//.test(file));
}

test("every code the sources throw a coded error with is in that class's table, and every coded class is listed here", () => {
  const files = sources();
  const classes = files.flatMap(({ text }) => [...text.matchAll(/^(?:export )?class (\w+) extends CodedError\b/gm)].map((m) => m[1]!));
  expect(classes.filter((c) => c !== 'PermanentStageError').sort()).toEqual(Object.keys(CODED).sort());
  const unknown: string[] = [];
  let seen = 0;
  for (const { file, text } of files) {
    for (const m of text.matchAll(/new (\w+Error)\(\s*'([A-Z_]+)'/g)) {
      const cls = CODED[m[1]!];
      if (!cls) continue;
      seen++;
      if (!Object.hasOwn(cls.codes, m[2]!)) unknown.push(`${file}: ${m[1]} ${m[2]}`);
    }
  }
  expect(unknown).toEqual([]);
  expect(seen).toBeGreaterThan(100); // the scan found the throw sites
});
