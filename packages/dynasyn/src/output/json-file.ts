/** Files of the output directory written atomically (temp + rename); JSON read with errors naming the file. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ArtifactError } from './errors.js';

/** Writes `value` as pretty JSON; a crash mid-write never leaves a truncated file (readers may be polling). */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeTextAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** Writes `text` to `file`: readers (and other processes writing it) see the old file or the new one, never a mix. */
export function writeTextAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Parsed JSON object of `file`; MISSING_ARTIFACT when absent, BAD_ARTIFACT when not a JSON object. */
export function readJsonObject(file: string, what: string): Record<string, unknown> {
  if (!existsSync(file)) throw new ArtifactError('MISSING_ARTIFACT', `${what} ${file} does not exist`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ArtifactError('BAD_ARTIFACT', `${what} ${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ArtifactError('BAD_ARTIFACT', `${what} ${file} must hold a JSON object`);
  return value as Record<string, unknown>;
}
