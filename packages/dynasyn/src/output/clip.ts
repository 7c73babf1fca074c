/**
 * A CLIP model in ONNX for evaluation (CLIP-T, CLIP-I). Accepted folder layouts, as HF optimum and
 * transformers.js export them (each model file may also sit in an `onnx/` subfolder):
 *   - `text_model.onnx` (input_ids [B,T] int64|int32, optional attention_mask -> text_embeds [B,E]) and
 *     `vision_model.onnx` (pixel_values [B,3,S,S] float32 -> image_embeds [B,E]), i.e.
 *     CLIPTextModelWithProjection / CLIPVisionModelWithProjection;
 *   - or one `model.onnx` (CLIPModel: input_ids, pixel_values, optional attention_mask -> text_embeds,
 *     image_embeds).
 * A model with a single rank-2 output is accepted whatever that output's name. The tokenizer is the CLIP
 * BPE folder `tokenizer/` (or the model folder itself); preprocessor_config.json, when present, sets the
 * image size, crop, mean and std.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ClipTokenizer } from '@dynasyn/diffusion';
import type { RgbImage } from '../types.js';
import { parseClipImageConfig, clipPreprocess, type ClipImageConfig } from './clip-preprocess.js';
import { ArtifactError } from './errors.js';

export interface ClipModelOptions {
  executionProviders?: ('cpu' | 'cuda')[];
  intraOpNumThreads?: number;
}

interface Part {
  session: ort.InferenceSession;
  file: string;
  output: string;
}

const find = (dir: string, name: string): string | undefined => [join(dir, name), join(dir, 'onnx', name)].find((f) => existsSync(f));

async function open(file: string, options: ClipModelOptions): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(file, {
      executionProviders: options.executionProviders ?? ['cpu'],
      ...(options.intraOpNumThreads !== undefined ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    });
  } catch (e) {
    throw new ArtifactError('BAD_MODEL', `onnxruntime could not load CLIP model ${file}: ${(e as Error).message}`, { cause: e });
  }
}

function pickOutput(session: ort.InferenceSession, file: string, name: string): string {
  if (session.outputNames.includes(name)) return name;
  const rank2 = session.outputMetadata.filter((m) => m.isTensor && m.shape.length === 2);
  if (session.outputNames.length === 1 && rank2.length === 1) return rank2[0]!.name;
  throw new ArtifactError('BAD_MODEL', `CLIP model ${file} has no ${name} output (it has ${session.outputNames.join(', ')})`);
}

function requireInput(session: ort.InferenceSession, file: string, name: string): void {
  if (!session.inputNames.includes(name))
    throw new ArtifactError('BAD_MODEL', `CLIP model ${file} has no ${name} input (it has ${session.inputNames.join(', ')})`);
}

export class ClipModel {
  private constructor(
    /** Folder the model was loaded from (recorded in the evaluation summary). */
    readonly dir: string,
    private readonly text: Part,
    private readonly vision: Part,
    private readonly tokenizer: ClipTokenizer,
    readonly imageConfig: ClipImageConfig,
    private readonly sessions: ort.InferenceSession[],
  ) {}

  /** Loads a CLIP folder in one of the layouts above; BAD_MODEL / MISSING_ARTIFACT name what is wrong. */
  static async load(dir: string, options: ClipModelOptions = {}): Promise<ClipModel> {
    if (!existsSync(dir)) throw new ArtifactError('MISSING_ARTIFACT', `CLIP model folder ${dir} does not exist`);
    const tokDir = existsSync(join(dir, 'tokenizer', 'vocab.json')) ? join(dir, 'tokenizer') : dir;
    if (!existsSync(join(tokDir, 'vocab.json')))
      throw new ArtifactError('MISSING_ARTIFACT', `CLIP model folder ${dir} has no tokenizer (vocab.json + merges.txt in tokenizer/ or the folder itself)`);
    const tokenizer = ClipTokenizer.fromDir(tokDir);
    const prep = [join(dir, 'preprocessor_config.json'), join(tokDir, 'preprocessor_config.json')].find((f) => existsSync(f));
    let imageConfig: ClipImageConfig;
    try {
      imageConfig = parseClipImageConfig(prep ? (JSON.parse(readFileSync(prep, 'utf8')) as Record<string, unknown>) : undefined);
    } catch (e) {
      throw new ArtifactError('BAD_MODEL', `${prep} is not valid JSON`, { cause: e });
    }
    const textFile = find(dir, 'text_model.onnx'),
      visionFile = find(dir, 'vision_model.onnx'),
      combined = find(dir, 'model.onnx');
    let text: Part, vision: Part, sessions: ort.InferenceSession[];
    if (textFile && visionFile) {
      const ts = await open(textFile, options),
        vs = await open(visionFile, options);
      text = { session: ts, file: textFile, output: pickOutput(ts, textFile, 'text_embeds') };
      vision = { session: vs, file: visionFile, output: pickOutput(vs, visionFile, 'image_embeds') };
      sessions = [ts, vs];
    } else if (combined) {
      const s = await open(combined, options);
      text = { session: s, file: combined, output: pickOutput(s, combined, 'text_embeds') };
      vision = { session: s, file: combined, output: pickOutput(s, combined, 'image_embeds') };
      sessions = [s];
    } else {
      throw new ArtifactError(
        'MISSING_ARTIFACT',
        `CLIP model folder ${dir} has neither text_model.onnx + vision_model.onnx nor model.onnx (also looked in ${join(dir, 'onnx')})`,
      );
    }
    requireInput(text.session, text.file, 'input_ids');
    requireInput(vision.session, vision.file, 'pixel_values');
    const declared = vision.session.inputMetadata.find((m) => m.name === 'pixel_values');
    const shape = declared?.isTensor ? declared.shape : [];
    if (typeof shape[2] === 'number' && typeof shape[3] === 'number' && (shape[2] !== imageConfig.cropHeight || shape[3] !== imageConfig.cropWidth)) {
      imageConfig = { ...imageConfig, cropHeight: shape[2], cropWidth: shape[3] };
    }
    return new ClipModel(dir, text, vision, tokenizer, imageConfig, sessions);
  }

  /** Unit-length text embedding of each prompt. */
  async embedTexts(prompts: readonly string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const p of prompts) out.push(normalize(await this.run(this.text, { ...this.textFeeds(p), ...this.dummyFor('text') })));
    return out;
  }

  /** Unit-length image embedding of each image (CLIP preprocessing applied). */
  async embedImages(images: readonly RgbImage[]): Promise<Float32Array[]> {
    const { cropHeight: h, cropWidth: w } = this.imageConfig;
    const out: Float32Array[] = [];
    for (const img of images) {
      const pixels = new ort.Tensor('float32', clipPreprocess(img, this.imageConfig), [1, 3, h, w]);
      out.push(normalize(await this.run(this.vision, { pixel_values: pixels, ...this.dummyFor('vision') })));
    }
    return out;
  }

  async release(): Promise<void> {
    for (const s of this.sessions) await s.release();
  }

  private textFeeds(prompt: string): Record<string, ort.Tensor> {
    const meta = this.text.session.inputMetadata.find((m) => m.name === 'input_ids');
    const declared = meta?.isTensor ? meta.shape[1] : undefined;
    const length = typeof declared === 'number' && declared > 0 ? declared : this.tokenizer.modelMaxLength;
    const ids = this.tokenizer.encodePadded(prompt, length);
    const end = ids.indexOf(this.tokenizer.eosId);
    const mask = Array.from(ids, (_, i) => (i <= end ? 1 : 0));
    const tensor = (name: string, values: ArrayLike<number>) => {
      const m = this.text.session.inputMetadata.find((x) => x.name === name);
      const type = m?.isTensor ? m.type : 'int64';
      return type === 'int32'
        ? new ort.Tensor('int32', Int32Array.from(values), [1, length])
        : new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(v))), [1, length]);
    };
    const feeds: Record<string, ort.Tensor> = { input_ids: tensor('input_ids', ids) };
    if (this.text.session.inputNames.includes('attention_mask')) feeds['attention_mask'] = tensor('attention_mask', mask);
    return feeds;
  }

  /** A combined CLIPModel needs both inputs on every run: the other modality gets a neutral dummy. */
  private dummyFor(kind: 'text' | 'vision'): Record<string, ort.Tensor> {
    if (this.text.session !== this.vision.session) return {};
    if (kind === 'text') {
      const { cropHeight: h, cropWidth: w } = this.imageConfig;
      return { pixel_values: new ort.Tensor('float32', new Float32Array(3 * h * w), [1, 3, h, w]) };
    }
    return this.textFeeds('');
  }

  private async run(part: Part, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await part.session.run(feeds, [part.output]);
    } catch (e) {
      throw new ArtifactError('BAD_MODEL', `CLIP model ${part.file} failed to run: ${(e as Error).message}`, { cause: e });
    }
    const t = result[part.output]!;
    if (t.type !== 'float32') throw new ArtifactError('BAD_MODEL', `CLIP model ${part.file}: ${part.output} is ${t.type}, expected float32`);
    return Float32Array.from(t.data as Float32Array);
  }
}

function normalize(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return n > 0 ? v.map((x) => x / n) : v;
}

/** Cosine of two unit vectors (clamped to [-1, 1] against rounding). */
export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length)
    throw new ArtifactError('BAD_MODEL', `CLIP embeddings differ in width (${a.length} vs ${b.length}): text and vision models do not belong together`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return Math.max(-1, Math.min(1, s));
}
