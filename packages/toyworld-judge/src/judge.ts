/**
 * The trained judge at inference: a folder with classifier.onnx, finder.onnx and judge.json. `classify`
 * reads a subject's attributes from an image and two regions; `findSubjects` gives the per-cell class
 * probabilities that `regionsFromFinder` (regions.ts) turns into regions when no mask comes with the image.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { saveModel } from '@dynasyn/ort-training';
import { FINDER_CLASSES, FINDER_GRID, HEAD_NAMES, HEAD_OFFSETS, HEADS, LOGITS, type HeadName } from './heads.js';
import { buildClassifierNet, buildFinderNet, CROP, IMAGE_SIZE } from './judge-net.js';
import { imageToChw, judgeInputBuffers, judgeInputs } from './judge-data.js';
import type { Weights } from './nn.js';

const S = IMAGE_SIZE;

/** judge.json: what a judge folder holds and how its inputs are made. */
export interface JudgeManifest {
  format: 'toyworld-judge/1';
  imageSize: number;
  /** pixel / 127.5 - 1, CHW. */
  normalization: 'x/127.5-1';
  heads: Record<HeadName, readonly string[]>;
  finderClasses: readonly string[];
  finderGrid: number;
}

/** One head's answer: the most likely label and the probabilities of all of them. */
export interface HeadPrediction {
  label: string;
  confidence: number;
  probs: Float32Array;
}
export type Prediction = Record<HeadName, HeadPrediction>;

export function writeJudgeFolder(dir: string, weights: Weights): void {
  mkdirSync(dir, { recursive: true });
  saveModel(buildClassifierNet(weights).model('dynasyn-toyworld-judge'), join(dir, 'classifier.onnx'));
  saveModel(buildFinderNet(weights).model('dynasyn-toyworld-judge'), join(dir, 'finder.onnx'));
  const manifest: JudgeManifest = {
    format: 'toyworld-judge/1',
    imageSize: S,
    normalization: 'x/127.5-1',
    heads: HEADS,
    finderClasses: FINDER_CLASSES,
    finderGrid: FINDER_GRID,
  };
  writeFileSync(join(dir, 'judge.json'), JSON.stringify(manifest, null, 2) + '\n');
}

function softmax(logits: ArrayLike<number>, from: number, n: number): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[from + i]!);
  const out = new Float32Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) s += out[i] = Math.exp(logits[from + i]! - max);
  for (let i = 0; i < n; i++) out[i]! /= s;
  return out;
}

export class ToyworldJudge {
  private constructor(
    readonly dir: string,
    private readonly classifier: ort.InferenceSession,
    private readonly finder: ort.InferenceSession,
  ) {}

  static async load(dir: string, options: { threads?: number } = {}): Promise<ToyworldJudge> {
    const manifest = JSON.parse(readFileSync(join(dir, 'judge.json'), 'utf8')) as JudgeManifest;
    if (manifest.format !== 'toyworld-judge/1') throw new Error(`${dir}/judge.json: unknown format ${String(manifest.format)}`);
    const so: ort.InferenceSession.SessionOptions = { intraOpNumThreads: options.threads ?? 1, interOpNumThreads: 1 };
    const classifier = await ort.InferenceSession.create(join(dir, 'classifier.onnx'), so);
    const unknown = classifier.inputNames.filter((name) => !['crop', 'scene', 'patch'].includes(name));
    if (unknown.length) {
      await classifier.release();
      throw new Error(`${dir}/classifier.onnx takes inputs this judge does not make (${unknown.join(', ')}): it was written by another version`);
    }
    const finder = await ort.InferenceSession.create(join(dir, 'finder.onnx'), so);
    return new ToyworldJudge(dir, classifier, finder);
  }

  /**
   * Attributes of the subject in region A of each image (B: its partner, or zeros). images: RGB HWC bytes
   * (64 x 64); regions: per image [A, B], each S*S values in [0, 1].
   */
  async classify(images: Uint8Array[], regions: [Float32Array, Float32Array][]): Promise<Prediction[]> {
    const n = images.length;
    const C = CROP;
    const inputs = judgeInputBuffers(n);
    images.forEach((rgb, i) => {
      checkImage(rgb);
      judgeInputs(rgb, regions[i]![0], regions[i]![1], inputs, i);
    });
    const feeds: Record<string, ort.Tensor> = {
      crop: new ort.Tensor('float32', inputs.crop, [n, 4, C, C]),
      scene: new ort.Tensor('float32', inputs.scene, [n, 5, C, C]),
      patch: new ort.Tensor('float32', inputs.patch, [n, 4, C, C]),
    };
    // a judge folder written before the patch input (crop and scene only) reads as it always did
    const out = await this.classifier.run(Object.fromEntries(this.classifier.inputNames.map((name) => [name, feeds[name]!])));
    const logits = out['logits']!.data as Float32Array;
    return Array.from({ length: n }, (_, i) => {
      const p = {} as Prediction;
      for (const h of HEAD_NAMES) {
        const probs = softmax(logits, i * LOGITS + HEAD_OFFSETS[h], HEADS[h].length);
        let best = 0;
        for (let k = 1; k < probs.length; k++) if (probs[k]! > probs[best]!) best = k;
        p[h] = { label: HEADS[h][best]!, confidence: probs[best]!, probs };
      }
      return p;
    });
  }

  /** Per-cell class probabilities [11, 16, 16] (background, then the classes) of each image. */
  async findSubjects(images: Uint8Array[]): Promise<Float32Array[]> {
    const n = images.length,
      G = FINDER_GRID,
      C = FINDER_CLASSES.length;
    const img = new Float32Array(n * 3 * S * S);
    images.forEach((rgb, i) => {
      checkImage(rgb);
      imageToChw(rgb, img, i * 3 * S * S);
    });
    const out = await this.finder.run({ image: new ort.Tensor('float32', img, [n, 3, S, S]) });
    const logits = out['class_map']!.data as Float32Array;
    return Array.from({ length: n }, (_, i) => {
      const probs = new Float32Array(C * G * G);
      const cell = new Float32Array(C);
      for (let j = 0; j < G * G; j++) {
        for (let c = 0; c < C; c++) cell[c] = logits[(i * C + c) * G * G + j]!;
        const p = softmax(cell, 0, C);
        for (let c = 0; c < C; c++) probs[c * G * G + j] = p[c]!;
      }
      return probs;
    });
  }

  async release(): Promise<void> {
    await this.classifier.release();
    await this.finder.release();
  }
}

function checkImage(rgb: Uint8Array): void {
  if (rgb.length !== S * S * 3) throw new Error(`the judge reads ${S}x${S} RGB images (${S * S * 3} bytes); got ${rgb.length} bytes`);
}
