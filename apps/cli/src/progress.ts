/** Step progress on stderr: a cli-progress bar on a terminal, plain `label step/total` lines otherwise (logs, CI). */
import cliProgress from 'cli-progress';

export interface Progress {
  update(step: number, total: number): void;
  stop(): void;
}

export function createProgress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: `${label} [{bar}] {value}/{total} steps | {duration_formatted}`, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(step, total) {
        if (!started) {
          bar.start(total, 0);
          started = true;
        }
        bar.update(step);
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  return {
    update(step, total) {
      stream.write(`${label}: step ${step}/${total}\n`);
    },
    stop() {},
  };
}
