/**
 * The README's error tables and the code agree: every code the API answers and every code a stage can record
 * on a failed personalization is documented, and every documented code can happen.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RENAMED } from './plugins/errors.js';

const apiRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const repo = join(apiRoot, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'testing' || e.name === 'bench' ? [] : sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}
const matches = (text: string, re: RegExp) => [...text.matchAll(re)].map((m) => m[1]!);

/** What the API answers: its createError codes, the codes it writes itself, Fastify's renamed ones. */
function apiCodes(): Set<string> {
  const codes = new Set(Object.values(RENAMED));
  for (const file of sources(join(apiRoot, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const c of [...matches(text, /createError\(\s*'([A-Z_]+)'/g), ...matches(text, /\bcode: '([A-Z_]+)'/g)]) codes.add(c);
  }
  return codes;
}

/** What a stage records: the code tables of the packages the stages run, and the codes the stages write themselves. */
function stageCodes(): Set<string> {
  const codes = new Set(['INTERNAL']);
  for (const pkg of ['dynasyn', 'diffusion', 'imaging', 'storage', 'ort-training']) {
    // `dynasyn evaluate`'s codes are the CLI's, never a personalization's
    for (const file of sources(join(repo, 'packages', pkg, 'src')).filter((f) => /(errors|input-error)\.ts$/.test(f) && !/\/evaluate\//.test(f))) {
      for (const table of matches(readFileSync(file, 'utf8'), /_CODES = \{([\s\S]*?)\} as const/g))
        for (const c of matches(table, /^\s*([A-Z_]+):/gm)) codes.add(c);
    }
  }
  for (const file of sources(join(repo, 'packages', 'stages', 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const c of [...matches(text, /PermanentStageError\(\s*'([A-Z_]+)'/g), ...matches(text, /\bcode: '([A-Z_]+)'/g)]) codes.add(c);
  }
  return codes;
}

/** The codes in the first column of the tables of the README's sections `from` up to the next `##` heading of its level. */
function documented(from: string[]): Set<string> {
  const readme = readFileSync(join(apiRoot, 'README.md'), 'utf8');
  const codes = new Set<string>();
  for (const heading of from) {
    const start = readme.indexOf(`\n### ${heading}\n`);
    expect({ heading, found: start >= 0 }).toEqual({ heading, found: true });
    const section = readme.slice(start + 1).split(/\n##+ /)[0]!;
    for (const row of section.split('\n').filter((l) => l.startsWith('| `'))) for (const c of matches(row.split('|')[1]!, /`([A-Z][A-Z0-9_]+)`/g)) codes.add(c);
  }
  return codes;
}

const missing = (codes: Set<string>, from: Set<string>) => [...codes].filter((c) => !from.has(c)).sort();

test('the README documents every code the API answers', () => {
  const api = apiCodes();
  expect(api.size).toBeGreaterThan(25);
  expect(missing(api, documented(['Errors', 'Upload refusals']))).toEqual([]);
});

test('the README documents every code a stage can record on a failed personalization', () => {
  const stages = stageCodes();
  expect(stages.size).toBeGreaterThan(40);
  expect(missing(stages, documented(['Failure codes']))).toEqual([]);
});

test('every documented code can happen (no TOO_MANY_FILES the API never sends)', () => {
  expect(missing(documented(['Errors', 'Upload refusals']), apiCodes())).toEqual([]);
  expect(missing(documented(['Failure codes']), stageCodes())).toEqual([]);
});
