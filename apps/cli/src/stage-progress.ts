/**
 * Progress of a multi-stage job (personalize, augment, demo) on stderr: on a terminal one cli-progress bar
 * per stage (augment, gsa, train phase 1/2 with the step's losses, sample), each finished when the next
 * begins; otherwise plain lines `stage: step/total ...` (logs, CI, tests).
 */
import cliProgress from 'cli-progress';
import type { Stage } from '@dynasyn/domain';
import type { ProgressEvent } from '@dynasyn/dynasyn';

/** One label per stage of @dynasyn/domain: a stage added there without a label here does not compile. */
const LABELS: Record<Stage, string> = {
  prepare: 'prepare',
  augment: 'augment',
  gsa: 'GSA',
  train: 'train',
  sample: 'sample',
  evaluate: 'evaluate',
  report: 'report',
};

/** `md 0.1234 m2a 0.2 ...` in the order of METHOD.md's loss. */
export function formatLosses(losses: Record<string, number> | undefined): string {
  if (!losses) return '';
  const order = ['md', 'm2a', 'ica', 'aug', 'total'];
  const keys = [...order.filter((k) => k in losses), ...Object.keys(losses).filter((k) => !order.includes(k))];
  return keys.map((k) => `${k} ${losses[k]!.toPrecision(4)}`).join(' ');
}

export interface StageProgress {
  (e: ProgressEvent): void;
  stop(): void;
}

/**
 * `logEveryMs`: without a terminal, a stage's lines come at most this often (its first and last step always), so
 * a log holds the losses' course without a line per denoising step of every sample.
 */
export function createStageProgress(
  stream: NodeJS.WriteStream = process.stderr,
  logEveryMs = 2000,
  now: () => number = () => performance.now(),
): StageProgress {
  const label = (e: ProgressEvent) => `${LABELS[e.stage]}${e.phase ? ` phase ${e.phase}` : ''}`;
  if (!stream.isTTY) {
    let last = { name: '', at: -Infinity };
    const f = ((e: ProgressEvent) => {
      // stage start markers (step 0): a log line per finished step is enough, and an input error stays the only line
      if (e.step === 0) return;
      const name = label(e),
        t = now();
      if (name === last.name && e.step < e.total && t - last.at < logEveryMs) return;
      last = { name, at: t };
      const extra = [e.message, formatLosses(e.losses)].filter(Boolean).join(' ');
      stream.write(`${name}: ${e.step}/${e.total}${extra ? ` ${extra}` : ''}\n`);
    }) as StageProgress;
    f.stop = () => {};
    return f;
  }
  let bar: cliProgress.SingleBar | undefined;
  let current = '';
  const stop = () => {
    bar?.stop();
    bar = undefined;
    current = '';
  };
  const f = ((e: ProgressEvent) => {
    const name = label(e);
    const info = [formatLosses(e.losses), e.message].filter(Boolean).join(' ');
    if (name !== current) {
      stop();
      current = name;
      bar = new cliProgress.SingleBar(
        {
          stream,
          hideCursor: true,
          format: `${name.padEnd(14)} [{bar}] {value}/{total} | {duration_formatted} | {info}`,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(1, e.total), e.step, { info });
      return;
    }
    bar!.setTotal(Math.max(1, e.total));
    bar!.update(e.step, { info });
  }) as StageProgress;
  f.stop = stop;
  return f;
}
