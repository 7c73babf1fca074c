/** Progress lines without a terminal: the first and last step of each stage, and otherwise at most one line per interval. */
import { createStageProgress } from './stage-progress.js';

it('logs a stage first and last step, and between them at most one line every 2 s', () => {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s.trimEnd()) } as unknown as NodeJS.WriteStream;
  let t = 0;
  const progress = createStageProgress(stream, 2000, () => t);
  for (let step = 0; step <= 10; step++) {
    progress({ stage: 'train', phase: 1, step, total: 10, losses: { md: 0.5, total: 0.5 } });
    t += 500;
  }
  for (let step = 1; step <= 3; step++) progress({ stage: 'sample', step, total: 3 });
  expect(lines).toEqual([
    'train phase 1: 1/10 md 0.5000 total 0.5000',
    'train phase 1: 5/10 md 0.5000 total 0.5000',
    'train phase 1: 9/10 md 0.5000 total 0.5000',
    'train phase 1: 10/10 md 0.5000 total 0.5000',
    'sample: 1/3',
    'sample: 3/3',
  ]);
});
