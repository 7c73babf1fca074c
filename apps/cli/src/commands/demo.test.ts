/**
 * What `npm run demo` shows (issue 13), on the same run (eval/demo.json: the committed toy-world bundle, two held-out
 * identities, fixed seeds): DynASyn's samples resemble the reference subjects more than the backbone drawing the
 * same prompts with the class words (CLIP-I in every prompt category, and the share of class, colour, pattern and
 * accessory the toy-world judge finds kept), and training moves each placeholder's cross-attention onto its mask;
 * the `described` row (each subject described in words) shows what words alone carry.
 * The margins asserted are below the measured ones (docs/evaluation.md "The demo"), so the test fails when
 * personalization stops working, not when a figure moves by a sample. Identity accuracy (all four attributes) is
 * printed, not asserted: with the judge's own finder it is 0.056 for DynASyn (one sample of 18), 0 for the class
 * words and 0.167 described in words on the committed bundle, bounded by what its VAE lets through (a true
 * render keeps its whole identity through it in 34.5% of subjects: the model card). The attribute margin is the
 * 12,000-step judge's reading (+0.077 measured on the committed bundle, +0.125 and +0.083 on the two before it).
 * The attention's mass inside the masks rose 1.49x and 1.37x (mean 1.43) on the committed bundle.
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
  it('draws the held-out subjects closer to the reference than the class words do, with attention moved onto the masks', async () => {
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

    // CLIP-I above the class words' in every category (measured +0.259, +0.197, +0.110 on the committed bundle), and
    // by more on average; the judge's attributes kept above theirs (+0.077 measured)
    const margins = r.tables.map((t) => {
      const cell = (m: string) => t.rows.find((row) => row.method === m)!.cells.clipI!.mean!;
      return cell('dynasyn-fast') - cell('class-words');
    });
    for (const m of margins) expect(m).toBeGreaterThan(0.05);
    expect(margins.reduce((a, b) => a + b, 0) / margins.length).toBeGreaterThan(0.12);
    expect(meanOf('dynasyn-fast', 'attributes')).toBeGreaterThan(meanOf('class-words', 'attributes') + 0.025);
    // the backbone draws what words say: described, the subjects keep far more of their attributes than with the
    // class word alone (+0.355 measured), the most a placeholder could carry through the text
    expect(meanOf('described', 'attributes')).toBeGreaterThan(meanOf('class-words', 'attributes') + 0.2);

    const run = runs.find((x) => x.method === 'dynasyn-fast')!;
    const { attention } = JSON.parse(readFileSync(join(out, run.dir, 'metrics.json'), 'utf8')) as {
      attention: { before: AttentionRow[]; after: AttentionRow[] };
    };
    const ratios = attention.after.map((a) => a.massInMask / attention.before.find((b) => b.token === a.token)!.massInMask);
    expect(ratios).toHaveLength(2);
    // each placeholder's attention mass inside its mask rises by > 10%, on average by > 25% (measured on the committed
    // bundle: 1.49 and 1.37; on the two before it 1.30 and 1.44, 1.67 and 1.34: docs/evaluation.md); random weights do not move it
    for (const x of ratios) expect(x).toBeGreaterThan(1.1);
    expect(ratios.reduce((a, b) => a + b, 0) / ratios.length).toBeGreaterThan(1.25);
  }, 1_800_000);
});
