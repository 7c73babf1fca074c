/**
 * `dynasyn demo` (`npm run demo`): the main job on the embedded default. DynASyn personalizes two held-out
 * subjects of a toy-world scene on the committed toy-world bundle (models/toyworld, a backbone that really draws
 * its world), and the backbone draws the same prompts with class words as the floor; the toy-world judge and
 * CLIP score both (eval/demo.json is the protocol). `--tiny` runs the random-weight bundle instead: seconds, no
 * models, images that are noise by nature.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { loadProtocol, resultsMarkdown, runDemo } from '@dynasyn/dynasyn';
import { CliError } from './errors.js';
import { evaluateWithProgress } from './evaluate.js';
import { createStageProgress } from '../stage-progress.js';

/** The demo's protocol in the repository (apps/cli/dist/commands -> the root's eval/). */
export const DEMO_PROTOCOL = fileURLToPath(new URL('../../../../eval/demo.json', import.meta.url));

interface AttentionRow {
  token: string;
  massInMask: number;
  iou: number;
  maskShare: number;
}

/** `<asset0>: mass in mask 0.097 -> 0.346 (mask 0.12 of the grid), IoU 0.09 -> 0.14` lines of a run's metrics.json. */
function attentionLines(runDir: string): string[] {
  const file = path.join(runDir, 'metrics.json');
  if (!existsSync(file)) return [];
  const m = JSON.parse(readFileSync(file, 'utf8')) as { attention?: { before?: AttentionRow[]; after?: AttentionRow[] } };
  const before = m.attention?.before ?? [],
    after = m.attention?.after ?? [];
  return after.map((a) => {
    const b = before.find((x) => x.token === a.token);
    const f = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(3));
    return `  ${a.token}: attention mass inside its mask ${f(b?.massInMask)} -> ${f(a.massInMask)} (the mask is ${f(a.maskShare)} of the grid), IoU ${f(b?.iou)} -> ${f(a.iou)}`;
  });
}

async function toyworldDemo(dir: string): Promise<void> {
  if (!existsSync(DEMO_PROTOCOL))
    throw new CliError(
      `the toy-world demo needs the repository's eval/demo.json and models/ (${DEMO_PROTOCOL} is not there); \`dynasyn demo --tiny\` runs without them`,
    );
  const protocol = loadProtocol(DEMO_PROTOCOL);
  const out = path.resolve(dir);
  const r = await evaluateWithProgress(protocol, { out });
  const scene = protocol.scenes[0]!.id,
    seed = protocol.seeds[0]!;
  const runDir = path.join(out, 'runs', scene, 'dynasyn-fast', `seed-${seed}`);
  process.stdout.write(
    [
      `DynASyn on the toy-world bundle: ${protocol.description}`,
      '',
      resultsMarkdown(r).trim(),
      '',
      'Cross-attention of the placeholders against the subject masks, before and after training:',
      ...attentionLines(runDir),
      '',
      `personalization report (augmented set, attention maps, losses, samples): ${path.join(runDir, 'report.html')}`,
      `comparison with the class words and the subjects described in words (CLIP-T, CLIP-I, judge): ${path.join(out, 'report.html')}`,
      '',
    ].join('\n'),
  );
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'the main job on the embedded default: DynASyn on the toy-world bundle (two held-out subjects), against the class words, scored by CLIP and the judge (a few minutes); --tiny: the random-weight bundle (seconds)',
    )
    .option('--dir <dir>', 'where the demo files go (rerun to continue)', path.join('out', 'demo'))
    .option('--tiny', 'the tiny random-weight bundle and the ball-and-box example, `tiny` preset: images are noise by nature')
    .action(async (o: { dir: string; tiny?: boolean }) => {
      if (!o.tiny) return toyworldDemo(o.dir);
      const progress = createStageProgress();
      const t0 = performance.now();
      try {
        const r = await runDemo({ dir: path.join(o.dir, 'tiny'), onProgress: progress });
        progress.stop();
        process.stdout.write(`report: ${r.reportPath}\n`);
        process.stderr.write(
          `done in ${((performance.now() - t0) / 1000).toFixed(0)} s. The tiny bundle has random weights: its images are noise by nature; the losses and attention maps are the signal.\n`,
        );
      } finally {
        progress.stop();
      }
    });
}
