/**
 * What `npm run demo` shows (issue 13), on the same run (eval/demo.json: the committed toy-world bundle, two held-out
 * identities, fixed seeds; each placeholder 6 embedding rows started from the subject's noun phrase): DynASyn's
 * samples keep the subjects' whole identities (class, colour, pattern and accessory, the toy-world judge's
 * reading), which the backbone drawing the same prompts with the class words never does; they resemble the
 * reference more (CLIP-I in every prompt category) and keep more of the attributes; and training moves each
 * placeholder's cross-attention onto its mask. The `described` row (each subject described in words) shows what
 * words alone carry. The margins asserted are below the measured ones (docs/evaluation.md "The demo"), so the test
 * fails when personalization stops working, not when a figure moves by a sample (one sample is 0.056 of identity).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProtocol, readLedger, runEvaluation } from '@dynasyn/dynasyn';
import { DEMO_PROTOCOL } from './demo.js';

let out: string;
beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'demo-'));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface AttentionRow {
  token: string;
  massInMask: number;
}

describe('the toy-world demo', () => {
  it("keeps the held-out subjects' identities, which the class words never do, resembles them more, and moves attention onto the masks", async () => {
    const r = await runEvaluation({ protocol: loadProtocol(DEMO_PROTOCOL), out });
    const runs = [...readLedger(out).values()];
    const meanOf = (method: string, key: string) => {
      const v = runs
        .filter((x) => x.method === method)
        .flatMap((x) => x.samples.map((s) => s.scores[key]))
        .filter((x): x is number => typeof x === 'number');
      return v.reduce((a, b) => a + b, 0) / v.length;
    };
    expect(runs.map((x) => x.samples.length)).toEqual([18, 18, 18]);
    const figures = ['clipI', 'attributes', 'identity'].map(
      (k) => `${k} ${meanOf('dynasyn-fast', k).toFixed(3)} vs ${meanOf('class-words', k).toFixed(3)} vs ${meanOf('described', k).toFixed(3)}`,
    );
    process.stderr.write(`demo, DynASyn vs class words vs described in words: ${figures.join(', ')}\n`);

    // the whole identity kept in a share of the samples (measured 0.333), never with the class word alone (0)
    expect(meanOf('dynasyn-fast', 'identity')).toBeGreaterThan(0.2);
    expect(meanOf('class-words', 'identity')).toBeLessThanOrEqual(0.1);
    // CLIP-I above the class words' in every category (measured +0.296, +0.502, +0.393 on the committed bundle), and by more on average; the judge's
    // attributes kept above theirs (+0.424 measured)
    const margins = r.tables.map((t) => {
      const cell = (m: string) => t.rows.find((row) => row.method === m)!.cells.clipI!.mean!;
      return cell('dynasyn-fast') - cell('class-words');
    });
    for (const m of margins) expect(m).toBeGreaterThan(0.15);
    expect(margins.reduce((a, b) => a + b, 0) / margins.length).toBeGreaterThan(0.25);
    expect(meanOf('dynasyn-fast', 'attributes')).toBeGreaterThan(meanOf('class-words', 'attributes') + 0.2);
    // the backbone draws what words say: described, the subjects keep far more of their attributes than with the
    // class word alone (+0.473 measured)
    expect(meanOf('described', 'attributes')).toBeGreaterThan(meanOf('class-words', 'attributes') + 0.2);

    const run = runs.find((x) => x.method === 'dynasyn-fast')!;
    const { attention } = JSON.parse(readFileSync(join(out, run.dir, 'metrics.json'), 'utf8')) as {
      attention: { before: AttentionRow[]; after: AttentionRow[] };
    };
    const ratios = attention.after.map((a) => a.massInMask / attention.before.find((b) => b.token === a.token)!.massInMask);
    expect(ratios).toHaveLength(2);
    // each placeholder's attention mass inside its mask rises by > 30%, on average by > 50% (measured on the committed
    // bundle: 1.86 and 1.76; with one row per placeholder 1.29 and 1.30: docs/evaluation.md); random weights do not move it
    for (const x of ratios) expect(x).toBeGreaterThan(1.3);
    expect(ratios.reduce((a, b) => a + b, 0) / ratios.length).toBeGreaterThan(1.5);
  }, 1_800_000);
});
