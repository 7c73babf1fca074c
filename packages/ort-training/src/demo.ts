/**
 * The quickstart's main job until the DynASyn pipeline lands: embedding training (the phase-1 idea of the
 * method) on the committed UNet fixture. The text embedding fed to the UNet's cross-attention is the only
 * trainable tensor; AdamW lowers the fixture's denoising loss. Prints progress and writes the learned
 * tensor, the optimizer checkpoint and the loss curve.
 *
 *   npm run demo [-- --steps 60 --out out/demo --lr 0.05]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { TrainingSession } from './training-session.js';
import { AdamW, saveCheckpoint } from './optimizer.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';

const fixture = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/unet');

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

async function main() {
  const steps = Number(option('steps', '60'));
  const lr = Number(option('lr', '0.05'));
  const out = path.resolve(option('out', 'out/demo'));
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got ${option('steps', '')}`);
  fs.mkdirSync(out, { recursive: true });

  const manifest = JSON.parse(fs.readFileSync(path.join(fixture, 'manifest.json'), 'utf8')) as { loss: string; inputs: Record<string, string> };
  const reference = readSafetensors(path.join(fixture, 'reference.safetensors')).tensors;
  const input = (name: string) => reference.get(manifest.inputs[name]!)!;

  console.log(`deriving the training graph of ${path.relative(process.cwd(), path.join(fixture, 'model.onnx'))} (cached after the first run)`);
  const session = await TrainingSession.create({
    model: path.join(fixture, 'model.onnx'),
    loss: manifest.loss,
    trainable: ['encoder_hidden_states'],
    cacheDir: path.join(out, '.cache'),
  });
  session.setTrainable('encoder_hidden_states', input('encoder_hidden_states'));
  const feeds = { sample: input('sample'), timestep: input('timestep'), target: input('target') };
  const optimizer = new AdamW({ lr, weightDecay: 0, maxGradNorm: 1 });

  const losses: number[] = [];
  const bar = process.stdout.isTTY
    ? new cliProgress.SingleBar({ format: 'embedding training |{bar}| {value}/{total} steps  loss {loss}' }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(steps, 0, { loss: '-' });
  const t0 = performance.now();
  for (let s = 1; s <= steps; s++) {
    const { loss } = await session.trainStep(feeds, optimizer);
    losses.push(loss);
    if (bar) bar.update(s, { loss: loss.toFixed(5) });
    else if (s === 1 || s % 10 === 0 || s === steps) console.log(`step ${s}/${steps} loss ${loss.toFixed(5)}`);
  }
  bar?.stop();
  const ms = (performance.now() - t0) / steps;
  const final = (await session.step(feeds)).loss;

  writeSafetensors(path.join(out, 'embedding.safetensors'), { encoder_hidden_states: session.getTrainable('encoder_hidden_states') });
  saveCheckpoint(path.join(out, 'checkpoint.safetensors'), session, optimizer, { steps: String(steps) });
  fs.writeFileSync(path.join(out, 'metrics.json'), `${JSON.stringify({ steps, lr, msPerStep: ms, losses, finalLoss: final }, null, 1)}\n`);
  await session.release();
  console.log(`loss ${losses[0]!.toFixed(5)} -> ${final.toFixed(5)} in ${steps} steps (${ms.toFixed(1)} ms/step)`);
  console.log(`wrote ${path.relative(process.cwd(), out)}/{embedding.safetensors,checkpoint.safetensors,metrics.json}`);
}

main().catch((e) => {
  console.error(`demo: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
