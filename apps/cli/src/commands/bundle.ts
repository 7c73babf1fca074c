/**
 * `dynasyn bundle create-tiny DIR`: the tiny random-weight bundle tests and the demo use.
 * `dynasyn bundle create-sd21 --out DIR`: an SD 2.1-shaped bundle at full size, random weights, for benchmarks.
 */
import path from 'node:path';
import { createSdBundle, createTinyBundle, type SdBundleProgress, type SdDtype, type SdVariant } from '@dynasyn/diffusion';

export async function createTiny(dir: string, seed: number): Promise<void> {
  await createTinyBundle(dir, { seed });
  process.stdout.write(`${path.resolve(dir)}\n`);
}

export interface CreateSd21Options {
  out: string;
  variant: SdVariant;
  dtype: SdDtype;
  seed: number;
}

/** Progress on stderr: one line rewritten in place on a terminal, a line per 10% otherwise (logs, CI). */
function progressLine(label: string, stream: NodeJS.WriteStream = process.stderr): (p: SdBundleProgress) => void {
  const t0 = Date.now();
  let shown = -1;
  return ({ part, done, total }) => {
    const percent = Math.floor((100 * done) / total);
    const step = stream.isTTY ? 1 : 10;
    if (percent < shown + step && done < total) return;
    shown = percent;
    const line = `${label}: ${percent}% (${(done / 1e6).toFixed(0)}M of ${(total / 1e6).toFixed(0)}M parameters, writing ${part}, ${((Date.now() - t0) / 1000).toFixed(0)} s)`;
    stream.write(stream.isTTY ? `\r${line}${done === total ? '\n' : ''}` : `${line}\n`);
  };
}

export async function createSd21(o: CreateSd21Options): Promise<void> {
  const t0 = Date.now();
  const info = await createSdBundle(o.out, { variant: o.variant, dtype: o.dtype, seed: o.seed, onProgress: progressLine(`${o.variant} ${o.dtype}`) });
  const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
  const sizes = Object.entries(info.bytes)
    .map(([part, n]) => `${part} ${gb(n)}`)
    .join(', ');
  process.stderr.write(`wrote ${sizes} in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  process.stdout.write(`${path.resolve(o.out)}\n`);
}
