import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipTokenizer } from '@dynasyn/diffusion';
import { boundingBox, crop } from '@dynasyn/imaging';
import { referenceImageEmbed, referenceTextEmbed, writeTinyClip, type TinyClipWeights } from '../testing/tiny-clip.js';
import { syntheticImage, writeSyntheticOutput, rectMask } from '../testing/synthetic-output.js';
import type { RgbImage } from '../types.js';
import { isArtifactError, readMetrics, readSamples } from './artifacts.js';
import { ClipModel, cosine } from './clip.js';
import { CLIP_IMAGE_DEFAULTS, clipPreprocess, parseClipImageConfig, resizeBicubicPil, shortestEdgeSize } from './clip-preprocess.js';
import { evaluateOutputDir, evaluateSamples } from './evaluate.js';
import { buildReportHtml } from './report.js';

let root: string;
let weights: TinyClipWeights;
let clip: ClipModel;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'dynasyn-clip-'));
  weights = writeTinyClip(join(root, 'clip'));
  clip = await ClipModel.load(join(root, 'clip'));
});
afterAll(async () => {
  await clip.release();
  rmSync(root, { recursive: true, force: true });
});

const unit = (v: Float32Array) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const { mean: M, std: SD } = CLIP_IMAGE_DEFAULTS;
const norm = (v: number, c: 0 | 1 | 2) => (v / 255 - M[c]) / SD[c];

function image(width: number, height: number, px: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(px(x, y), (y * width + x) * 3);
  return { width, height, data };
}

describe('CLIP preprocessing (shortest side 224 bicubic, centre crop, CLIP mean/std)', () => {
  it('crops the centre of an image that needs no resize', () => {
    // 300x224: the shortest side is already 224, so the only change is the crop at left = (300-224)//2 = 38
    const img = image(300, 224, (x, y) => [x >> 1, 50, y]);
    const px = clipPreprocess(img);
    expect(px.length).toBe(3 * 224 * 224);
    const at = (c: number, y: number, x: number) => px[(c * 224 + y) * 224 + x]!;
    expect(at(0, 10, 100)).toBeCloseTo(norm((100 + 38) >> 1, 0), 6);
    expect(at(1, 200, 7)).toBeCloseTo(norm(50, 1), 6);
    expect(at(2, 123, 0)).toBeCloseTo(norm(123, 2), 6);
  });

  it('resizes with the bicubic filter, exact on a linear ramp away from the borders', () => {
    // 256x300 -> 224x262 (HF truncates the long side), crop top = (262-224)//2 = 19. A horizontal ramp
    // R = x is reproduced exactly by the (normalised, symmetric) filter: output column j samples input
    // x = (j + 0.5) * 256/224 - 0.5; column 100 -> 114.357 -> 114.
    expect(shortestEdgeSize(256, 300, 224)).toEqual({ width: 224, height: 262 });
    const img = image(256, 300, (x) => [x, 200, 255 - x]);
    const px = clipPreprocess(img);
    const at = (c: number, y: number, x: number) => px[(c * 224 + y) * 224 + x]!;
    expect(at(0, 50, 100)).toBeCloseTo(norm(114, 0), 6);
    expect(at(2, 50, 100)).toBeCloseTo(norm(255 - 114, 2), 6);
    expect(at(1, 0, 0)).toBeCloseTo(norm(200, 1), 6);
  });

  it('resizes bit for bit like PIL Image.resize(BICUBIC) (fixture from scripts/export_pil_bicubic_fixture.py)', () => {
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/pil-bicubic.json', import.meta.url), 'utf8')) as {
      cases: { in: [number, number]; out: [number, number]; bytes: number[] }[];
    };
    for (const {
      in: [w, h],
      out: [W, H],
      bytes,
    } of fixture.cases) {
      const src = image(w, h, (x, y) => [0, 1, 2].map((c) => (x * x * 3 + y * y * 5 + x * y + c * 71) % 256) as [number, number, number]);
      expect(Array.from(resizeBicubicPil(src, W, H).data)).toEqual(bytes);
    }
  });

  it('reads HF preprocessor_config.json forms', () => {
    const c = parseClipImageConfig({
      size: { shortest_edge: 336 },
      crop_size: { height: 336, width: 336 },
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
    });
    expect(c).toEqual({ shortestEdge: 336, cropHeight: 336, cropWidth: 336, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(parseClipImageConfig({ size: 224, crop_size: 224 }).cropWidth).toBe(224);
  });
});

describe('ClipModel', () => {
  it('embeds text as the model computes it from the tokenizer ids and attention mask', async () => {
    const [t] = await clip.embedTexts(['a photo of panda']);
    expect(t!.length).toBe(weights.dims.E);
    expect(Math.hypot(...t!)).toBeCloseTo(1, 5);
    const tok = ClipTokenizer.fromDir(join(root, 'clip', 'tokenizer'));
    const ids = tok.encode('a photo of panda');
    const expected = unit(referenceTextEmbed(weights, ids, ids.length));
    for (let i = 0; i < t!.length; i++) expect(t![i]).toBeCloseTo(expected[i]!, 5);
  });

  it('embeds images from CLIP-preprocessed pixels', async () => {
    const img = syntheticImage(90, 2);
    const [v] = await clip.embedImages([img]);
    const expected = unit(referenceImageEmbed(weights, clipPreprocess(img)));
    for (let i = 0; i < v!.length; i++) expect(v![i]).toBeCloseTo(expected[i]!, 4);
  });

  it('gives the same embeddings from a combined onnx/model.onnx', async () => {
    writeTinyClip(join(root, 'combined'), 'combined');
    const combined = await ClipModel.load(join(root, 'combined'));
    try {
      const [a] = await clip.embedTexts(['a photo of bowl']);
      const [b] = await combined.embedTexts(['a photo of bowl']);
      const [c] = await clip.embedImages([syntheticImage(32, 1)]);
      const [d] = await combined.embedImages([syntheticImage(32, 1)]);
      expect(cosine(a!, b!)).toBeCloseTo(1, 6);
      expect(cosine(c!, d!)).toBeCloseTo(1, 6);
    } finally {
      await combined.release();
    }
  });

  it('names the accepted layouts when a folder has none', async () => {
    const dir = join(root, 'empty');
    const { writeTinyTokenizer } = await import('@dynasyn/diffusion');
    writeTinyTokenizer(dir);
    await expect(ClipModel.load(dir)).rejects.toThrow(/neither text_model\.onnx \+ vision_model\.onnx nor model\.onnx/);
    await ClipModel.load(join(root, 'nowhere')).catch((e) => expect(isArtifactError(e, 'MISSING_ARTIFACT')).toBe(true));
  });
});

describe('evaluateSamples', () => {
  it('CLIP-I is 1 for the reference crop itself, scores are cosines, and categories are averaged', async () => {
    const reference = syntheticImage(64, 3);
    const masks = [rectMask(64, 4, 10, 30, 50), rectMask(64, 34, 30, 60, 60)];
    const crop0 = crop(reference, boundingBox(masks[0]!)!);
    const samples = [
      { image: crop0, prompt: 'a photo of <asset0>', classPrompt: 'a photo of panda', category: 'plain' },
      { image: syntheticImage(64, 4), prompt: 'a photo of <asset0> and <asset1>', classPrompt: 'a photo of panda and bowl', category: 'interaction' },
      { image: syntheticImage(64, 5), prompt: 'a photo of <asset1> in the snow', classPrompt: 'a photo of bowl in the snow', category: 'action' },
      { image: syntheticImage(64, 6), prompt: 'a photo of a beach', classPrompt: 'a photo of a beach', category: 'plain' },
    ];
    const { perSample, summary } = await evaluateSamples(clip, { reference, masks, tokens: ['<asset0>', '<asset1>'], samples });
    expect(perSample[0]!.clipI).toBeCloseTo(1, 5);
    expect(perSample[3]!.clipI).toBeNull();
    for (const m of perSample) {
      expect(Math.abs(m.clipT)).toBeLessThanOrEqual(1);
      if (m.clipI !== null) expect(Math.abs(m.clipI)).toBeLessThanOrEqual(1);
    }
    const [img1] = await clip.embedImages([samples[1]!.image]);
    const refs = await clip.embedImages([crop0, crop(reference, boundingBox(masks[1]!)!)]);
    expect(perSample[1]!.clipI).toBeCloseTo((cosine(img1!, refs[0]!) + cosine(img1!, refs[1]!)) / 2, 6);
    const [txt1] = await clip.embedTexts(['a photo of panda and bowl']);
    expect(perSample[1]!.clipT).toBeCloseTo(cosine(img1!, txt1!), 6);
    expect(Object.keys(summary.byCategory)).toEqual(['plain', 'action', 'interaction']);
    expect(summary.byCategory['plain']).toEqual({ count: 2, clipT: (perSample[0]!.clipT + perSample[3]!.clipT) / 2, clipI: perSample[0]!.clipI });
    expect(summary.overall.count).toBe(4);
  });

  it('evaluates an output directory in place and the report shows the scores', async () => {
    const { dir } = await writeSyntheticOutput(join(root, 'run'));
    const summary = await evaluateOutputDir(dir, clip);
    expect(summary.overall.count).toBe(2);
    expect(readSamples(dir).every((s) => s.metrics && Number.isFinite(s.metrics.clipT))).toBe(true);
    expect(readMetrics(dir).evaluation?.byCategory['action']?.count).toBe(1);
    expect(readMetrics(dir).steps.length).toBe(24); // training rows kept
    expect(JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')).evaluation.model).toBe(join(root, 'clip'));
    expect(await buildReportHtml(dir)).toMatch(/class="evaluation-table"/);
  });
});
