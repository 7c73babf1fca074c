/** `dynasyn bundle create-tiny DIR`: the tiny random-weight bundle tests and the demo use. */
import path from 'node:path';
import { createTinyBundle } from '@dynasyn/diffusion';

export async function createTiny(dir: string, seed: number): Promise<void> {
  await createTinyBundle(dir, { seed });
  process.stdout.write(`${path.resolve(dir)}\n`);
}
