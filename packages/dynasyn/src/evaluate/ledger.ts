/**
 * The evaluation's ledger: `ledger.jsonl` in the output directory, one line per finished run (its scores
 * included), appended when the run is done. A killed evaluation leaves at worst a torn last line, which is
 * ignored; on the next start every run in the ledger is skipped and the others resume in their own
 * personalize output directories. A run recorded with other settings (another fingerprint) is refused.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunRecord } from './aggregate.js';

export const LEDGER_FILE = 'ledger.jsonl';

/** The finished runs by runId (the last line of a runId wins); torn or foreign lines are skipped. */
export function readLedger(outDir: string): Map<string, RunRecord> {
  const file = join(outDir, LEDGER_FILE);
  const out = new Map<string, RunRecord>();
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as RunRecord;
      if (typeof r.runId === 'string' && typeof r.fingerprint === 'string' && Array.isArray(r.samples)) out.set(r.runId, r);
    } catch {
      // a line torn by a kill mid-write: that run is simply not finished
    }
  }
  return out;
}

/** Appends a finished run (one write of one line). */
export function appendLedger(outDir: string, record: RunRecord): void {
  const file = join(outDir, LEDGER_FILE);
  // a torn last line from a kill would glue onto this one: start on a fresh line
  const sep = existsSync(file) && !readFileSync(file, 'utf8').endsWith('\n') && readFileSync(file, 'utf8').length ? '\n' : '';
  appendFileSync(file, `${sep}${JSON.stringify(record)}\n`);
}
