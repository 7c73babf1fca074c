import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, Graph, saveModel, type Dim, type OnnxModel } from '@dynasyn/ort-training';
import { describeBundle, loadBundle, parseSchedulerConfig, SD_DEFAULTS } from './bundle.js';
import { DiffusionError } from './errors.js';
import { writeTinyTokenizer } from './tokenizer-files.js';

const F = DataType.FLOAT;
let tmp: string;
let n = 0;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'bundle-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A parseable graph with the given inputs; output 0 is an Identity of the first input, optionally reshaped by its declared shape. */
function graphModel(inputs: Array<{ name: string; shape: Dim[]; dtype?: number }>, output: { name: string; shape: Dim[] }, weightBytes = 0): OnnxModel {
  const g = new Graph({ name: 'g' });
  for (const i of inputs) g.addInput({ name: i.name, dtype: i.dtype ?? F, shape: i.shape });
  if (weightBytes) g.addInitializer({ name: 'w', dtype: F, dims: [weightBytes / 4], data: new Uint8Array(weightBytes) });
  g.addNode({ opType: 'Identity', inputs: [inputs[0]!.name], outputs: [output.name] });
  g.addOutput({ name: output.name, dtype: F, shape: output.shape });
  return { irVersion: 8, opsetImports: [{ domain: '', version: 17 }], producerName: 'test', producerVersion: '', graph: g, metadata: {}, extra: {} };
}

interface BundleSpec {
  /** Write the submodels' config.json files (as optimum does). */
  configs?: boolean;
  latent?: number;
  width?: number;
  scheduler?: Record<string, unknown>;
  /** Static graph shapes (else symbolic batch/height/width). */
  staticShapes?: boolean;
}

/** An optimum-layout bundle directory with parseable (not runnable) graphs; the UNet's weights are external. */
function makeBundle(spec: BundleSpec = {}): string {
  const dir = join(tmp, `b${n++}`);
  const latent = spec.latent ?? 8;
  const width = spec.width ?? 32;
  const hw: Dim[] = spec.staticShapes ? [latent, latent] : ['height', 'width'];
  const B: Dim = spec.staticShapes ? 1 : 'batch';
  const write = (rel: string, v: unknown) => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), JSON.stringify(v));
  };
  write('model_index.json', { _class_name: 'ORTStableDiffusionPipeline', _diffusers_version: '0.30.0', scheduler: ['diffusers', 'DDIMScheduler'] });
  write(
    'scheduler/scheduler_config.json',
    spec.scheduler ?? {
      _class_name: 'DDIMScheduler',
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      beta_end: 0.012,
      clip_sample: false,
      steps_offset: 1,
    },
  );
  writeTinyTokenizer(join(dir, 'tokenizer'), { words: ['panda', 'bowl'] });
  const save = (rel: string, m: OnnxModel, external = false) => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    saveModel(m, join(dir, rel), external ? { externalizeAbove: 0 } : {});
  };
  save(
    'text_encoder/model.onnx',
    graphModel([{ name: 'input_ids', shape: [B, 77], dtype: DataType.INT32 }], { name: 'last_hidden_state', shape: [B, 77, width] }),
  );
  save(
    'unet/model.onnx',
    graphModel(
      [
        { name: 'sample', shape: [B, 4, ...hw] },
        { name: 'timestep', shape: [B] },
        { name: 'encoder_hidden_states', shape: [B, 77, width] },
      ],
      { name: 'out_sample', shape: [B, 4, ...hw] },
      64,
    ),
    true,
  );
  save(
    'vae_encoder/model.onnx',
    graphModel([{ name: 'sample', shape: [B, 3, ...hw.map((d) => (typeof d === 'number' ? d * 8 : d))] }], { name: 'latent_sample', shape: [B, 4, ...hw] }),
  );
  save('vae_decoder/model.onnx', graphModel([{ name: 'latent_sample', shape: [B, 4, ...hw] }], { name: 'sample', shape: [B, 3, ...hw] }));
  if (spec.configs ?? true) {
    write('unet/config.json', { sample_size: latent, in_channels: 4, out_channels: 4, cross_attention_dim: width });
    write('vae_decoder/config.json', { scaling_factor: 0.13025, block_out_channels: [8, 16], latent_channels: 4, sample_size: latent * 2 });
    write('text_encoder/config.json', { hidden_size: width, max_position_embeddings: 77 });
  }
  return dir;
}

const code = (c: string, message: RegExp) => expect.objectContaining({ code: c, message: expect.stringMatching(message) });

describe('loadBundle', () => {
  it("reads facts from the submodels' config.json files", () => {
    const b = loadBundle(makeBundle({ latent: 8, width: 32 }));
    expect(b.vaeScaleFactor).toBe(2); // 2 ** (len(block_out_channels) - 1)
    expect(b.sampleSize).toBe(16); // unet sample_size * vae scale factor
    expect(b.vaeScalingFactor).toBe(0.13025);
    expect(b.latentChannels).toBe(4);
    expect(b.textEmbedDim).toBe(32);
    expect(b.maxTokens).toBe(77);
    expect(b.unetPath).toMatch(/unet[/\\]model\.onnx$/);
    expect(b.scheduler).toMatchObject({ betaSchedule: 'scaled_linear', stepsOffset: 1, clipSample: false, predictionType: 'epsilon' });
    expect(describeBundle(b)).toMatch(/16x16 px images from 4x8x8 latents.*width 32 over 77 tokens.*epsilon prediction.*DDIMScheduler/);
  });

  it('falls back to static graph shapes, then to SD defaults', () => {
    const fromGraphs = loadBundle(makeBundle({ configs: false, staticShapes: true, latent: 8, width: 24 }));
    expect(fromGraphs).toMatchObject({
      sampleSize: 64,
      latentChannels: 4,
      textEmbedDim: 24,
      vaeScaleFactor: SD_DEFAULTS.vaeScaleFactor,
      vaeScalingFactor: SD_DEFAULTS.vaeScalingFactor,
      maxTokens: 77,
    });
    const symbolic = loadBundle(makeBundle({ configs: false, width: 24 }));
    expect(symbolic.sampleSize).toBe(SD_DEFAULTS.sampleSize);
    expect(symbolic.textEmbedDim).toBe(24); // the hidden width is static even when batch and size are not
  });

  it('refuses to guess the text width when neither configs nor graphs tell it', () => {
    expect(() => loadBundle(makeBundle({ configs: false }), { inspectModels: 'never' })).toThrow(code('BAD_BUNDLE', /hidden width/));
  });

  it('names a missing directory, file or external data file and what it is for', () => {
    expect(() => loadBundle(join(tmp, 'nope'))).toThrow(code('BAD_BUNDLE', /nope does not exist/));
    const cases: Array<[string, RegExp]> = [
      ['model_index.json', /model_index\.json is missing \(the pipeline index/],
      ['scheduler/scheduler_config.json', /scheduler_config\.json is missing \(the noise schedule/],
      ['tokenizer/merges.txt', /merges\.txt is missing \(the CLIP BPE merge list/],
      ['vae_encoder/model.onnx', /vae_encoder[/\\]model\.onnx is missing \(the VAE encoder/],
      ['unet/model.onnx.data', /unet \(the denoising UNet.*model\.onnx\.data does not exist/],
    ];
    for (const [file, message] of cases) {
      const dir = makeBundle();
      rmSync(join(dir, file));
      expect(() => loadBundle(dir)).toThrow(code('MISSING_FILE', message));
    }
  });

  it('names malformed JSON and an ONNX file that does not parse', () => {
    let dir = makeBundle();
    writeFileSync(join(dir, 'unet', 'config.json'), '{"sample_size": 64,,}');
    expect(() => loadBundle(dir)).toThrow(code('BAD_CONFIG', /unet[/\\]config\.json \(unet configuration\) is not valid JSON/));
    dir = makeBundle();
    writeFileSync(join(dir, 'vae_decoder', 'model.onnx'), 'this is not protobuf at all');
    expect(() => loadBundle(dir)).toThrow(code('BAD_MODEL', /vae_decoder[/\\]model\.onnx \(the VAE decoder.*does not parse as ONNX/));
    dir = makeBundle();
    writeFileSync(join(dir, 'unet', 'config.json'), '{"sample_size": "big"}');
    expect(() => loadBundle(dir)).toThrow(code('BAD_CONFIG', /"sample_size" is "big", expected a positive integer/));
  });

  it('checks that each graph has the inputs the pipeline feeds', () => {
    const dir = makeBundle();
    saveModel(graphModel([{ name: 'ids', shape: [1, 77] }], { name: 'h', shape: [1, 77, 32] }), join(dir, 'text_encoder', 'model.onnx'));
    expect(() => loadBundle(dir)).toThrow(code('BAD_MODEL', /has no input "input_ids"; its inputs are ids/));
  });

  it('does not parse large graphs whose facts the configs already give', () => {
    const dir = makeBundle();
    writeFileSync(join(dir, 'text_encoder', 'model.onnx'), Buffer.alloc(4096, 7)); // garbage, but "large"
    expect(() => loadBundle(dir, { inspectMaxBytes: 1024 })).not.toThrow();
    expect(() => loadBundle(dir, { inspectMaxBytes: 1024, inspectModels: 'always' })).toThrow(DiffusionError);
  });
});

describe('parseSchedulerConfig', () => {
  it("fills diffusers' DDPM/DDIM defaults", () => {
    expect(parseSchedulerConfig({})).toEqual({
      numTrainTimesteps: 1000,
      betaStart: 0.0001,
      betaEnd: 0.02,
      betaSchedule: 'linear',
      predictionType: 'epsilon',
      timestepSpacing: 'leading',
      stepsOffset: 0,
      clipSample: true,
      clipSampleRange: 1,
      setAlphaToOne: true,
    });
  });

  it('reads an SD 2.1 (768, v_prediction) scheduler config', () => {
    // stabilityai/stable-diffusion-2-1 scheduler/scheduler_config.json (diffusers 0.10)
    const sd21 = {
      _class_name: 'DDIMScheduler',
      _diffusers_version: '0.10.0.dev0',
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      clip_sample: false,
      num_train_timesteps: 1000,
      prediction_type: 'v_prediction',
      set_alpha_to_one: false,
      skip_prk_steps: true,
      steps_offset: 1,
      trained_betas: null,
    };
    expect(parseSchedulerConfig(sd21)).toEqual({
      numTrainTimesteps: 1000,
      betaStart: 0.00085,
      betaEnd: 0.012,
      betaSchedule: 'scaled_linear',
      predictionType: 'v_prediction',
      timestepSpacing: 'leading',
      stepsOffset: 1,
      clipSample: false,
      clipSampleRange: 1,
      setAlphaToOne: false,
    });
    expect(parseSchedulerConfig({ ...sd21, timestep_spacing: 'trailing' }).timestepSpacing).toBe('trailing');
  });

  it('takes trained betas and checks their count', () => {
    expect(parseSchedulerConfig({ trained_betas: [0.1, 0.2, 0.3] })).toMatchObject({ trainedBetas: [0.1, 0.2, 0.3], numTrainTimesteps: 3 });
    expect(() => parseSchedulerConfig({ trained_betas: [0.1, 0.2], num_train_timesteps: 1000 }, 'x.json')).toThrow(
      code('BAD_CONFIG', /x\.json: "trained_betas".*1000 values/),
    );
  });

  it('rejects unknown schedules and prediction types, naming the file and field', () => {
    expect(() => parseSchedulerConfig({ beta_schedule: 'cosine' }, 'sched.json')).toThrow(
      code('BAD_CONFIG', /sched\.json: "beta_schedule" is "cosine", expected one of linear, scaled_linear, squaredcos_cap_v2/),
    );
    expect(() => parseSchedulerConfig({ prediction_type: 'x0' }, 'sched.json')).toThrow(code('BAD_CONFIG', /"prediction_type" is "x0"/));
    expect(() => parseSchedulerConfig({ timestep_spacing: 'random' })).toThrow(code('BAD_CONFIG', /timestep_spacing/));
    expect(() => parseSchedulerConfig({ steps_offset: -1 })).toThrow(code('BAD_CONFIG', /steps_offset/));
    expect(() => parseSchedulerConfig({ beta_start: 0.02, beta_end: 0.01 })).toThrow(code('BAD_CONFIG', /beta_end/));
    expect(() => parseSchedulerConfig([])).toThrow(code('BAD_CONFIG', /JSON object/));
  });
});
