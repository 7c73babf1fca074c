/**
 * A look at a trained bundle through the product's pipeline: `node dist/preview.js --bundle DIR --out sheet.png`.
 * Row 1: renders of fresh scenes (a seed the training never drew: 1000 by default); row 2: their VAE
 * reconstructions; rows 3-4: text-to-image samples of their captions (two seeds). Captions go to sheet.txt.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DiffusionPipeline, type RgbPixels } from '@dynasyn/diffusion';
import { captionFor, createRng, datasetSceneSpec, encodePng, renderScene } from '@dynasyn/toyworld';

const { values: a } = parseArgs({
  options: {
    bundle: { type: 'string', default: 'models/toyworld' },
    out: { type: 'string', default: 'preview.png' },
    seed: { type: 'string', default: '1000' },
    count: { type: 'string', default: '8' },
    steps: { type: 'string', default: '25' },
    guidance: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
  },
});

/** Tiles images (all one size) `columns` across with a 2 px white border. */
function tile(images: RgbPixels[], columns: number): RgbPixels {
  const s = images[0]!.width,
    gap = 2;
  const rows = Math.ceil(images.length / columns);
  const width = columns * (s + gap) + gap,
    height = rows * (s + gap) + gap;
  const data = new Uint8Array(width * height * 3).fill(255);
  images.forEach((img, k) => {
    const ox = gap + (k % columns) * (s + gap),
      oy = gap + Math.floor(k / columns) * (s + gap);
    for (let y = 0; y < s; y++) data.set(img.data.subarray(y * s * 3, (y + 1) * s * 3), ((oy + y) * width + ox) * 3);
  });
  return { width, height, data };
}

const count = Number(a.count),
  seed = Number(a.seed);
const pipeline = await DiffusionPipeline.create(a.bundle!, { intraOpNumThreads: Number(a.threads) });
try {
  const size = pipeline.bundle.sampleSize;
  const renders: RgbPixels[] = [],
    captions: string[] = [];
  for (let i = 0; i < count; i++) {
    const spec = datasetSceneSpec(seed, i);
    const scene = renderScene(spec, { size });
    renders.push({ width: size, height: size, data: scene.rgb });
    captions.push(captionFor(spec, createRng(`preview/${seed}/${i}`), { detail: 'full' }));
  }
  const recon = await pipeline.decodeLatents(await pipeline.encodeImages(renders, count));
  const samples: RgbPixels[] = [];
  for (const s of [1, 2]) {
    const r = await pipeline.textToImage({ prompts: captions, steps: Number(a.steps), guidance: Number(a.guidance), seed: s * 100 });
    samples.push(...r.images);
  }
  const sheet = tile([...renders, ...recon, ...samples], count);
  writeFileSync(a.out!, encodePng(sheet.data, sheet.width, sheet.height, 3));
  writeFileSync(a.out!.replace(/\.png$/, '') + '.txt', captions.map((c, i) => `${i}: ${c}`).join('\n') + '\n');
  console.log(`${a.out}: renders, VAE reconstructions, samples (2 seeds) of ${count} captions`);
} finally {
  await pipeline.release();
}
