/** Aggregation against a hand computation, and the ledger's handling of a torn last line. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildPairedTables, buildTables, type RunRecord } from './aggregate.js';
import { appendLedger, LEDGER_FILE, readLedger } from './ledger.js';
import { formatCell, formatPairedCell, resultsMarkdown } from './results.js';
import { CLIP_METRICS } from './scorers.js';

const run = (scene: string, method: string, seed: number, plain: (number | null)[], action: number[]): RunRecord => ({
  runId: `${scene}/${method}/seed-${seed}`,
  scene,
  method,
  seed,
  fingerprint: 'f',
  dir: '',
  seconds: 1,
  samples: [
    ...plain.map((v, i) => ({ file: `p${i}`, prompt: 'p', classPrompt: 'p', category: 'plain' as const, seed: i, scores: { clipT: v, clipI: 0.5 } })),
    ...action.map((v, i) => ({ file: `a${i}`, prompt: 'a', classPrompt: 'a', category: 'action' as const, seed: i, scores: { clipT: v, clipI: null } })),
  ],
});

test('a seed is the mean over scenes of each run mean; a cell the mean and sample std over seeds', () => {
  const runs = [
    // seed 0: scene a mean (0.2 + 0.4) / 2 = 0.3 (the null left out), scene b 0.5 -> 0.4
    run('a', 'm', 0, [0.2, 0.4, null], [0.1]),
    run('b', 'm', 0, [0.5], [0.3]),
    // seed 1: scene a 0.6, scene b (0.6 + 1.0) / 2 = 0.8 -> 0.7
    run('a', 'm', 1, [0.6], [0.2]),
    run('b', 'm', 1, [0.6, 1.0], [0.2]),
    run('a', 'other', 0, [0.9], [0.9]),
  ];
  const [plain, action, interaction] = buildTables(
    runs,
    [
      { id: 'm', label: 'M' },
      { id: 'other', label: 'O' },
    ],
    [0, 1],
    CLIP_METRICS,
  );
  const m = plain!.rows[0]!.cells.clipT!;
  expect(m.perSeed[0]).toBeCloseTo(0.4, 12);
  expect(m.perSeed[1]).toBeCloseTo(0.7, 12);
  expect(m.mean).toBeCloseTo(0.55, 12);
  expect(m.std).toBeCloseTo(Math.sqrt(((0.4 - 0.55) ** 2 + (0.7 - 0.55) ** 2) / 1), 12); // n - 1 = 1
  expect(m.n).toBe(2);
  expect(plain!.samples).toEqual({ m: 7, other: 1 }); // 3 + 1 + 1 + 2 samples of method m
  // CLIP-I absent on every action sample: no value
  expect(action!.rows[0]!.cells.clipI).toEqual({ mean: null, std: null, n: 0, perSeed: [null, null] });
  expect(action!.rows[0]!.cells.clipT!.mean).toBeCloseTo((0.2 + 0.2) / 2, 12);
  // one seed with a value: no spread
  expect(plain!.rows[1]!.cells.clipT).toEqual({ mean: 0.9, std: null, n: 1, perSeed: [0.9, null] });
  expect(interaction!.rows[0]!.cells.clipT!.n).toBe(0);
  expect(formatCell(m)).toBe('0.55 ± 0.21');
  expect(formatCell(plain!.rows[1]!.cells.clipT)).toBe('0.9');
  const md = resultsMarkdown({
    version: 1,
    protocol: { name: 'x', backbone: 'b', clip: 'c', preset: 'fast' },
    methods: [],
    seeds: [0, 1],
    scenes: ['a', 'b'],
    metrics: [...CLIP_METRICS],
    tables: [plain!],
    runs: [],
    complete: true,
    runSeconds: 0,
  });
  expect(md).toContain('| M | 0.55 ± 0.21 | 0.5 ± 0 | 7 |');
});

test('the ledger: finished runs by id, a torn last line ignored and not glued to the next', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-'));
  const r = run('a', 'm', 0, [0.1], []);
  appendLedger(dir, r);
  fs.appendFileSync(path.join(dir, LEDGER_FILE), '{"runId":"a/m/seed-1","finger'); // killed mid-write
  expect([...readLedger(dir).keys()]).toEqual(['a/m/seed-0']);
  appendLedger(dir, { ...r, runId: 'a/m/seed-1' });
  expect([...readLedger(dir).keys()]).toEqual(['a/m/seed-0', 'a/m/seed-1']);
  expect(readLedger(dir).get('a/m/seed-1')).toEqual({ ...r, runId: 'a/m/seed-1' });
  fs.rmSync(dir, { recursive: true });
});

test('paired differences: the reference minus each method on the runs both have, per seed then over seeds, with won/lost/tied runs', () => {
  const runs = [
    // seed 0: scene a: ref 0.5 vs m 0.3 (+0.2), scene b: ref 0.4 vs m 0.4 (tie) -> seed value +0.1
    run('a', 'ref', 0, [0.5], [0.1]),
    run('b', 'ref', 0, [0.4], [0.1]),
    run('a', 'm', 0, [0.3], [0.2]),
    run('b', 'm', 0, [0.4], [0.2]),
    // seed 1: scene a: ref 0.2 vs m 0.5 (-0.3); scene b has no m run: left out -> seed value -0.3
    run('a', 'ref', 1, [0.2], [0.1]),
    run('b', 'ref', 1, [0.9], [0.1]),
    run('a', 'm', 1, [0.5], [0.2]),
  ];
  const methods = [
    { id: 'ref', label: 'R' },
    { id: 'm', label: 'M' },
  ];
  const [plain, action] = buildPairedTables(runs, 'ref', methods, [0, 1], CLIP_METRICS, ['plain', 'action']);
  expect(plain!.rows.map((r) => r.method)).toEqual(['m']); // not the reference against itself
  const c = plain!.rows[0]!.cells.clipT!;
  expect(c.mean).toBeCloseTo((0.1 + -0.3) / 2, 12);
  expect(c.std).toBeCloseTo(Math.sqrt((0.2 ** 2 + 0.2 ** 2) / 1), 12);
  expect([c.n, c.wins, c.losses, c.ties]).toEqual([2, 1, 1, 1]);
  expect(formatPairedCell(c)).toBe('−0.1 ± 0.28 · 1/3');
  // CLIP-I is 0.5 for every plain sample: all ties; absent on action samples: nothing compared
  expect(plain!.rows[0]!.cells.clipI).toMatchObject({ mean: 0, wins: 0, losses: 0, ties: 3 });
  expect(action!.rows[0]!.cells.clipI).toEqual({ mean: null, std: null, n: 0, wins: 0, losses: 0, ties: 0 });
  expect(action!.rows[0]!.cells.clipT!.mean).toBeCloseTo(-0.1, 12);
});
