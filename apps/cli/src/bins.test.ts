/**
 * Every workspace's `bin` (dynasyn, ort-train) must be usable as `npx NAME` right after `npm ci && npm run build`
 * in a fresh clone. npm links a bin into node_modules/.bin only when its file exists at install time, and dist/
 * is built after `npm ci`: so each bin is a committed, executable file outside dist/ that loads the build.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(root, file), 'utf8')) as Record<string, unknown>;

/** Workspace directories (relative, posix) from the root package.json's `workspaces` globs (`dir/*` or a path). */
function workspaceDirs(): string[] {
  return (readJson('package.json').workspaces as string[]).flatMap((glob) => {
    if (!glob.endsWith('/*')) return [glob];
    const parent = glob.slice(0, -2);
    return fs
      .readdirSync(path.join(root, parent))
      .map((d) => `${parent}/${d}`)
      .filter((d) => fs.existsSync(path.join(root, d, 'package.json')));
  });
}

/** Mode of each file git tracks, by path: what a fresh clone gets. */
function trackedModes(): Map<string, string> {
  const out = execFileSync('git', ['ls-files', '-s', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  return new Map(
    out
      .split('\0')
      .filter(Boolean)
      .map((l) => {
        const [meta, file] = l.split('\t');
        return [file!, meta!.split(' ')[0]!];
      }),
  );
}

const bins = workspaceDirs().flatMap((dir) => {
  const pkg = readJson(`${dir}/package.json`);
  const bin = typeof pkg.bin === 'string' ? { [String(pkg.name).split('/').pop()!]: pkg.bin } : ((pkg.bin ?? {}) as Record<string, string>);
  return Object.entries(bin).map(([name, target]) => ({ dir, name, target, file: path.posix.join(dir, target) }));
});

test('the documented commands are workspace bins', () => {
  expect(bins.map((b) => b.name)).toEqual(expect.arrayContaining(['dynasyn', 'ort-train']));
});

const tracked = trackedModes();

test.each(bins)('bin $name ($dir) is a committed executable node script outside dist/', ({ dir, name, target, file }) => {
  expect(target).not.toMatch(/^\/|\.\./);
  expect(path.posix.relative(dir, file).split('/')[0]).not.toBe('dist');
  expect(tracked.get(file)).toBe('100755');
  expect(fs.readFileSync(path.join(root, file), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  // npm ci takes the bins from the lock file: it must name the same file
  const locked = (readJson('package-lock.json').packages as Record<string, { bin?: Record<string, string> }>)[dir]?.bin?.[name];
  expect(locked && path.posix.join(dir, locked)).toBe(file);
});
