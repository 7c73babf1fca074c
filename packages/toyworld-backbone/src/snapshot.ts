/**
 * A bundle from a run's latest checkpoint, to look at a run in progress:
 * `node dist/snapshot.js --work .toyworld-train --out /tmp/snapshot` (then preview.js on it).
 */
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readSafetensors, type HostTensor } from '@dynasyn/ort-training';
import { writeBundleFiles, writeWeights, type BundleModel } from './bundle-io.js';

const { values: a } = parseArgs({
  options: { work: { type: 'string', default: '.toyworld-train' }, out: { type: 'string', default: '/tmp/toyworld-snapshot' } },
});
const w = a.work!,
  out = a.out!;
const state = JSON.parse(readFileSync(join(w, 'state.json'), 'utf8')) as { scalingFactor?: number };
if (state.scalingFactor === undefined) throw new Error(`${w}: the VAE phase has not finished`);
const { tensors, metadata } = readSafetensors(join(w, 'checkpoints', 'diffusion.safetensors'));
const byModel = new Map<BundleModel, Map<string, HostTensor>>();
for (const [name, t] of tensors) {
  if (!name.startsWith('trainable/')) continue;
  const [model, ...rest] = name.slice('trainable/'.length).split('/');
  if (!byModel.has(model as BundleModel)) byModel.set(model as BundleModel, new Map());
  byModel.get(model as BundleModel)!.set(rest.join('/'), t);
}
const init = join(w, 'init');
writeBundleFiles(init, out, state.scalingFactor, { _toyworld: { snapshotAtStep: Number(metadata.nextStep) } });
for (const [model, weights] of byModel) writeWeights(init, out, model, weights);
cpSync(join(w, 'vae', 'vae_encoder', 'model.onnx'), join(out, 'vae_encoder', 'model.onnx'));
const decoder = existsSync(join(w, 'decoder', 'done.json')) ? join(w, 'decoder') : join(w, 'vae');
cpSync(join(decoder, 'vae_decoder', 'model.onnx'), join(out, 'vae_decoder', 'model.onnx'));
console.log(`${out}: diffusion weights after ${metadata.nextStep} steps`);
