/**
 * `trainToyBackbone`: the whole reproducible run from a seed, resumable at any point. Work directory:
 *
 *   init/                 the seeded starting bundle (learned tokenizer, createSdBundle's graphs)
 *   vae/                  the trained VAE's graphs (after the VAE phase)
 *   checkpoints/<phase>.safetensors   weights + AdamW state + step of the phase in progress
 *   state.json            phase reached, the latent scaling factor, time spent
 *   train-log.jsonl       one line per step: phase, step, loss (and terms), lr, grad norm, ms
 *   cache/                derived training graphs
 *
 * The bundle carries the log compressed (BUNDLE_LOG): ~60,000 steps are 14 MB plain, 3 MB gzipped.
 *
 * Batches are functions of (seed, step) (data.ts), so the checkpoint's step is the data stream's state.
 */
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';
import { ClipTokenizer, createSdBundle } from '@dynasyn/diffusion';
import { AdamW, loadCheckpoint, saveCheckpoint } from '@dynasyn/ort-training';
import { createInitialBundle, writeBundleFiles, writeWeights, type BundleModel } from './bundle-io.js';
import { toyBundleConfig, type ToyPreset } from './config.js';
import { batchAt, stackImages, type ExampleSource } from './data.js';
import { DiffusionTrainer } from './diffusion-trainer.js';
import { writeModelCard, type RunSummary } from './model-card.js';
import type { ModelGroup } from './model-group.js';
import { warmupCosine } from './schedule.js';
import { learnCaptionTokenizer, vocabSize } from './tokenizer.js';
import { DecoderTrainer, VaeTrainer, type PhaseStepLog } from './vae-trainer.js';

export interface PhaseOptions {
  steps: number;
  batch: number;
  /** Peak learning rate (linear warmup, cosine decay to a tenth). */
  lr: number;
  warmup: number;
}

export interface TrainOptions {
  /** Where the finished bundle goes (models/toyworld). */
  out: string;
  /** Checkpoints, logs, the derived-graph cache. */
  workDir: string;
  seed: number;
  preset: ToyPreset;
  source: ExampleSource;
  /** subjectWeight: reconstruction weight of the subjects' pixels (data.ts subjectWeights; 1: plain MSE), also the decoder phase's. */
  vae: PhaseOptions & { klWeight: number; subjectWeight?: number };
  /** Decoder fine-tuning on the frozen encoder's latents (steps 0: none); independent of the diffusion phase. */
  decoder: PhaseOptions;
  /** A finished run writes its bundle again (after NOTES.md changed, say). */
  reexport?: boolean;
  /** Run only the decoder phase (beside a run already in its diffusion phase: it writes neither state.json nor the bundle). */
  onlyDecoder?: boolean;
  /**
   * A finished bundle of this trainer whose diffusion phase the run continues for `diffusion.steps` more steps (its
   * tokenizer, VAE, text encoder and UNet weights; fresh AdamW moments, a new warmup and cosine). The data stream
   * and noise go on where its log ends, so no batch repeats; its log heads the new one.
   */
  continueFrom?: string;
  /**
   * With `continueFrom`: first train the bundle's VAE (encoder and decoder, from its weights) for this many more
   * steps with `vae`'s batch, lr, KL and subject weights, then continue the diffusion phase on the new latents
   * (the latent space moves: the continued UNet adapts to it). The VAE's data stream goes on where its log ends.
   */
  refineVae?: number;
  /**
   * With `continueFrom`: also fine-tune the bundle's decoder (after `refineVae`'s VAE, if any) for this many more steps on
   * its frozen encoder's latents, with `decoder`'s batch, lr and warmup and `vae`'s subject weight. The latent space
   * does not move, so the UNet needs nothing new: it may run alone (`onlyDecoder`) or beside the diffusion phase.
   * Its data stream goes on where the bundle's log of decoder steps ends.
   */
  refineDecoder?: number;
  /**
   * With `refineDecoder`: the decoder starts afresh (seeded from `seed`) at these block_out_channels instead of from
   * the bundle's weights: a wider decoder for the same latents (the encoder's latent space and the UNet are kept).
   */
  decoderChannels?: number[];
  /** subjectWeight: weight of the subjects' latent cells in the epsilon MSE (data.ts latentSubjectWeights; 1: plain MSE). */
  diffusion: PhaseOptions & { emptyCaption: number; subjectWeight?: number };
  /** Captions the tokenizer learns from. */
  tokenizerCaptions: number;
  threads: number;
  /** Save a checkpoint at least this often (minutes). */
  checkpointMinutes: number;
  /** Stop (after a checkpoint) once this many minutes have passed in this invocation; resume continues. */
  stopAfterMinutes?: number;
  /** When stopped for time in the diffusion phase, still write the bundle of the weights so far (marked partial). */
  exportOnStop?: boolean;
  /** Called after each step (progress bars). */
  onStep?: (phase: Phase, step: number, total: number, log: PhaseStepLog, ms: number) => void;
  onPhase?: (phase: Phase, startStep: number, total: number) => void;
  onMessage?: (line: string) => void;
}

export type Phase = 'vae' | 'decoder' | 'diffusion';

interface State {
  seed: number;
  preset: ToyPreset;
  phase: Phase | 'export' | 'done';
  scalingFactor?: number;
  /** Whether the exported bundle has the fine-tuned decoder (a bundle exported before the decoder phase ended is exported again). */
  exportedDecoder?: boolean;
  /** Seconds spent in each phase over all invocations. */
  seconds: Record<string, number>;
  startedAt: string;
  /**
   * A run continuing another bundle's diffusion phase: its path, the first diffusion step (data stream) of this run,
   * and when it refines the VAE first, the first VAE step and the number of steps.
   */
  continued?: { from: string; stepOffset: number; vaeStepOffset?: number; refineVae?: number };
  /** The diffusion phase's subject weight, once it has started (absent: 1, plain MSE). */
  diffusionSubjectWeight?: number;
}

/** decoder/done.json: a finished decoder phase; `refine`, a continuation's --refine-decoder (for its model card). */
interface DecoderRecord {
  steps: number;
  seconds: number;
  refine?: DecoderRefine;
}

/** A continuation's decoder fine-tuning, as its model card tells it. */
export interface DecoderRefine {
  steps: number;
  /** The first decoder step (data stream) of this run. */
  stepOffset: number;
  batch: number;
  lr: number;
  warmup: number;
  subjectWeight: number;
  /** A fresh decoder of these block_out_channels (absent: the bundle's decoder went on). */
  channels?: number[];
}

export interface TrainResult {
  finished: boolean;
  state: State;
}

export async function trainToyBackbone(o: TrainOptions): Promise<TrainResult> {
  const w = o.workDir;
  mkdirSync(join(w, 'checkpoints'), { recursive: true });
  const stateFile = join(w, 'state.json'),
    logFile = join(w, 'train-log.jsonl');
  const say = (s: string) => o.onMessage?.(s);
  // intra-op threads sleep between parallel sections instead of spinning: on a machine shared with other work a
  // spinning thread burns the time slice its partner needs (UNet step at batch 16 under load: 5.3-6.2 s -> 3.3-3.5 s)
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  const cacheDir = join(w, 'cache');
  const invocationStart = performance.now();
  const outOfTime = () => o.stopAfterMinutes !== undefined && performance.now() - invocationStart > o.stopAfterMinutes * 60_000;

  const diffusionSubjectWeight = o.diffusion.subjectWeight ?? 1;
  let state: State;
  const resumed = existsSync(stateFile);
  if (resumed) {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
    if (state.seed !== o.seed || state.preset !== o.preset)
      throw new Error(`${w} holds a run with seed ${state.seed} (${state.preset}); use another --work directory or remove it`);
    say(`resuming at phase ${state.phase} (${w})`);
    // (a decoder phase beside it does not touch the diffusion phase nor its record)
    if (!o.onlyDecoder && ['diffusion', 'export', 'done'].includes(state.phase) && (state.diffusionSubjectWeight ?? 1) !== diffusionSubjectWeight)
      throw new Error(
        `${w} holds a diffusion phase trained with --diffusion-subject-weight ${state.diffusionSubjectWeight ?? 1}; resume it with that weight, or use another --work directory`,
      );
    if (o.continueFrom && !state.continued) throw new Error(`${w} holds a run from scratch; continue a bundle in another --work directory`);
  } else if (o.continueFrom) {
    state = startContinuation(o.continueFrom, w, o.seed, o.preset, logFile, o.refineVae ?? 0);
    const refines = [o.refineVae ? `its VAE for ${o.refineVae} steps` : '', o.refineDecoder ? `its decoder for ${o.refineDecoder} steps` : ''].filter(Boolean);
    say(
      o.onlyDecoder
        ? `continuing ${o.continueFrom}: its decoder for ${o.refineDecoder ?? 0} steps (only)`
        : `continuing ${o.continueFrom}: ${refines.length ? `${refines.join(', ')}, and ` : ''}its diffusion phase from its step ${state.continued!.stepOffset} for ${o.diffusion.steps} more steps`,
    );
  } else {
    state = { seed: o.seed, preset: o.preset, phase: 'vae', seconds: {}, startedAt: new Date().toISOString() };
  }
  // recorded before the diffusion phase starts (a resume before it may change the weight), so a resume inside or
  // after it with another weight is refused; absent: 1
  if (!o.onlyDecoder) {
    if (diffusionSubjectWeight !== 1) state.diffusionSubjectWeight = diffusionSubjectWeight;
    else delete state.diffusionSubjectWeight;
  }
  const saveState = () => {
    writeFileSync(`${stateFile}.tmp`, JSON.stringify(state, null, 2) + '\n');
    renameSync(`${stateFile}.tmp`, stateFile);
  };

  const initDir = join(w, 'init');
  if (!existsSync(join(initDir, 'model_index.json'))) {
    const tokenizer = learnCaptionTokenizer(await o.source.captions(o.seed, o.tokenizerCaptions));
    const config = toyBundleConfig(vocabSize(tokenizer), o.preset);
    rmSync(`${initDir}.tmp`, { recursive: true, force: true });
    await createInitialBundle(`${initDir}.tmp`, config, tokenizer, o.seed);
    renameSync(`${initDir}.tmp`, initDir);
    say(`starting bundle: ${vocabSize(tokenizer)}-token tokenizer learned from ${o.tokenizerCaptions} captions, ${initDir}`);
  }
  // a decoder phase beside a run leaves its state alone; one that starts a continuation records it (so the run's
  // diffusion phase, started later, resumes it instead of starting the continuation over)
  if (!o.onlyDecoder || !resumed) saveState();

  /** Runs steps [checkpoint step, total) of a phase; false when stopped for time. */
  const runPhase = async (
    phase: Phase,
    p: PhaseOptions,
    group: ModelGroup,
    opt: AdamW,
    step: (s: number) => Promise<PhaseStepLog>,
    logOffset = 0,
  ): Promise<boolean> => {
    const ckpt = join(w, 'checkpoints', `${phase}.safetensors`);
    let next = 0;
    if (existsSync(ckpt)) next = Number(loadCheckpoint(ckpt, group, opt).nextStep);
    o.onPhase?.(phase, next, p.steps);
    let lastSave = performance.now(),
      phaseClock = performance.now();
    const save = () => {
      saveCheckpoint(`${ckpt}.tmp`, group, opt, { nextStep: String(next), phase, seed: String(o.seed) });
      renameSync(`${ckpt}.tmp`, ckpt);
      const now = performance.now();
      state.seconds[phase] = (state.seconds[phase] ?? 0) + (now - phaseClock) / 1000;
      phaseClock = now;
      if (phase !== 'decoder') saveState(); // the decoder phase may run beside the others: its record is decoder/done.json
      lastSave = now;
    };
    while (next < p.steps) {
      const t0 = performance.now();
      const log = await step(next);
      const ms = performance.now() - t0;
      if (!Number.isFinite(log.loss)) throw new Error(`${phase} step ${next}: loss is ${log.loss}`);
      appendFileSync(
        logFile,
        JSON.stringify({
          phase,
          step: logOffset + next,
          loss: log.loss,
          ...log.terms,
          lr: log.lr,
          gradNorm: log.gradNorm,
          ms: Math.round(ms),
          at: new Date().toISOString(),
        }) + '\n',
      );
      next++;
      o.onStep?.(phase, next, p.steps, log, ms);
      if (next === p.steps || performance.now() - lastSave > o.checkpointMinutes * 60_000) save();
      if (next < p.steps && outOfTime()) {
        save();
        return false;
      }
    }
    return true;
  };

  const decoderDone = join(w, 'decoder', 'done.json');
  /** Decoder steps of this run: a run from scratch its decoder phase, a continuation its --refine-decoder. */
  const decoderPhase: PhaseOptions = state.continued ? { ...o.decoder, steps: o.refineDecoder ?? 0 } : o.decoder;
  /** The bundle from init/'s graphs, vae/'s and trained/'s weights; `partial` notes a run stopped before its last step. */
  const exportBundle = (partial?: { step: number }) => {
    const vocab = Object.keys(JSON.parse(readFileSync(join(initDir, 'tokenizer', 'vocab.json'), 'utf8')) as object).length;
    const config = toyBundleConfig(vocab, o.preset);
    const tmp = `${o.out}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    const marker = { seed: o.seed, preset: o.preset, trainedBy: '@dynasyn/toyworld-backbone', ...(partial ? { partialAtStep: partial.step } : {}) };
    writeBundleFiles(initDir, tmp, state.scalingFactor!, { _toyworld: marker });
    cpSync(join(w, 'vae', 'vae_encoder', 'model.onnx'), join(tmp, 'vae_encoder', 'model.onnx'));
    const decoderRecord = existsSync(decoderDone) ? (JSON.parse(readFileSync(decoderDone, 'utf8')) as DecoderRecord) : undefined;
    const decoderDir = decoderRecord ? join(w, 'decoder') : join(w, 'vae');
    cpSync(join(decoderDir, 'vae_decoder', 'model.onnx'), join(tmp, 'vae_decoder', 'model.onnx'));
    // a decoder of other widths than the encoder's (--decoder-channels, now or in a bundle continued) has its own
    // config: its block_out_channels go into the bundle's; the latent scaling factor stays the encoder's
    const decoderConfigFile = join(tmp, 'vae_decoder', 'config.json');
    const decoderConfig = JSON.parse(readFileSync(decoderConfigFile, 'utf8')) as { block_out_channels: number[] };
    const ownConfig = join(decoderDir, 'vae_decoder', 'config.json');
    if (existsSync(ownConfig)) {
      decoderConfig.block_out_channels = (JSON.parse(readFileSync(ownConfig, 'utf8')) as { block_out_channels: number[] }).block_out_channels;
      writeFileSync(decoderConfigFile, JSON.stringify(decoderConfig, null, 2) + '\n');
    }
    const decoderChannels = decoderConfig.block_out_channels;
    state.exportedDecoder = decoderRecord !== undefined;
    for (const m of ['text_encoder', 'unet'] as BundleModel[]) cpSync(join(w, 'trained', m, 'model.onnx'), join(tmp, m, 'model.onnx'));
    // a run stopped between checkpoints and resumed logs the steps after its checkpoint twice: the bundle keeps the
    // lines of the steps its weights went through (the last of each)
    const log = lastLinePerStep(readFileSync(logFile, 'utf8'));
    writeFileSync(join(tmp, BUNDLE_LOG), gzipSync(log, { level: 9 }));
    const summary: RunSummary = {
      options: o,
      ...(state.continued
        ? {
            continued: {
              ...state.continued,
              previousCard: readFileSync(join(w, 'continued-from', 'MODEL_CARD.md'), 'utf8'),
              ...(decoderRecord?.refine ? { refinedDecoder: decoderRecord.refine } : {}),
            },
          }
        : {}),
      config,
      decoderChannels,
      scalingFactor: state.scalingFactor!,
      seconds: {
        ...state.seconds,
        ...(decoderRecord ? { decoder: decoderRecord.seconds } : {}),
      },
      startedAt: state.startedAt,
      log,
      bundleDir: tmp,
    };
    const notesFile = join(w, 'NOTES.md');
    writeModelCard(join(tmp, 'MODEL_CARD.md'), summary, partial, existsSync(notesFile) ? readFileSync(notesFile, 'utf8') : undefined);
    rmSync(o.out, { recursive: true, force: true });
    renameSync(tmp, o.out);
  };

  /**
   * decoder-init/: the encoder of vae/ and a fresh decoder of `channels` (createSdBundle's, seeded from the run's seed,
   * with the bundle's tokenizer); kept, so a resume starts from the same graph. A resume with other channels is refused.
   */
  const freshDecoderDir = async (channels: number[]): Promise<string> => {
    const dir = join(w, 'decoder-init');
    const configFile = join(dir, 'vae_decoder', 'config.json');
    if (existsSync(configFile)) {
      const had = (JSON.parse(readFileSync(configFile, 'utf8')) as { block_out_channels: number[] }).block_out_channels;
      if (had.join() !== channels.join())
        throw new Error(`${w} holds a decoder phase with --decoder-channels ${had.join(',')}; resume it with those, or use another --work directory`);
      return dir;
    }
    const vocab = JSON.parse(readFileSync(join(initDir, 'tokenizer', 'vocab.json'), 'utf8')) as Record<string, number>;
    const base = toyBundleConfig(Object.keys(vocab).length, o.preset);
    const full = `${dir}.bundle.tmp`;
    rmSync(full, { recursive: true, force: true });
    await createSdBundle(full, {
      config: { ...base, vae: { ...base.vae, blockOutChannels: channels } },
      tokenizer: { vocab, merges: readFileSync(join(initDir, 'tokenizer', 'merges.txt'), 'utf8') },
      seed: o.seed,
    });
    rmSync(`${dir}.tmp`, { recursive: true, force: true });
    cpSync(join(full, 'vae_decoder'), join(`${dir}.tmp`, 'vae_decoder'), { recursive: true });
    cpSync(join(w, 'vae', 'vae_encoder'), join(`${dir}.tmp`, 'vae_encoder'), { recursive: true });
    rmSync(full, { recursive: true, force: true });
    renameSync(`${dir}.tmp`, dir);
    say(`a fresh decoder of block_out_channels [${channels.join(', ')}] (seed ${o.seed}) in ${dir}`);
    return dir;
  };

  /** The decoder phase, unless done or not asked for; false when stopped for time. */
  const runDecoderPhase = async (): Promise<boolean> => {
    if (decoderPhase.steps === 0 || existsSync(decoderDone)) return true;
    const channels = state.continued ? o.decoderChannels : undefined;
    // a continuation's decoder stream goes on after the last decoder step of the bundle's own log (init/'s copy)
    const decoderOffset = state.continued ? lastLoggedSteps(readBundleLog(initDir)).decoder + 1 : 0;
    const vaeDir = channels ? await freshDecoderDir(channels) : join(w, 'vae');
    const opt = new AdamW({ lr: warmupCosine(decoderPhase.lr, decoderPhase.warmup, decoderPhase.steps), weightDecay: 0, maxGradNorm: 1 });
    const t = await DecoderTrainer.create({
      vaeDir,
      source: o.source,
      seed: o.seed,
      batch: decoderPhase.batch,
      subjectWeight: o.vae.subjectWeight ?? 1,
      optimizer: opt,
      cacheDir,
      sessionOptions,
    });
    try {
      if (!(await runPhase('decoder', decoderPhase, t.group, opt, (s) => t.step(decoderOffset + s), decoderOffset))) return false;
      writeWeights(vaeDir, join(w, 'decoder'), 'vae_decoder', t.group.weightsOf('vae_decoder'));
      // a continuation's decoder config (block_out_channels) goes with it into the bundle (a run from scratch's is init/'s)
      const ownConfig = join(vaeDir, 'vae_decoder', 'config.json');
      if (existsSync(ownConfig)) cpSync(ownConfig, join(w, 'decoder', 'vae_decoder', 'config.json'));
      const record: DecoderRecord = {
        steps: decoderPhase.steps,
        seconds: state.seconds.decoder ?? 0,
        ...(state.continued
          ? {
              refine: {
                steps: decoderPhase.steps,
                stepOffset: decoderOffset,
                batch: decoderPhase.batch,
                lr: decoderPhase.lr,
                warmup: decoderPhase.warmup,
                subjectWeight: o.vae.subjectWeight ?? 1,
                ...(channels ? { channels } : {}),
              },
            }
          : {}),
      };
      writeFileSync(decoderDone, JSON.stringify(record) + '\n');
    } finally {
      await t.release();
    }
    say('VAE decoder fine-tuned');
    return true;
  };

  if (o.onlyDecoder) {
    if (state.phase === 'vae') throw new Error('the decoder phase needs the trained VAE: the run has not finished its VAE phase');
    const finished = await runDecoderPhase();
    // the run's bundle was written before this decoder was ready: write it again with it
    if (finished && state.phase === 'done' && !state.exportedDecoder) {
      exportBundle();
      saveState();
      say(`bundle written again to ${o.out} with the fine-tuned decoder`);
    }
    return { finished, state };
  }
  if (state.phase === 'done' && ((decoderPhase.steps > 0 && !state.exportedDecoder) || o.reexport)) state.phase = 'export';

  if (state.phase === 'vae') {
    // a continuation refines the bundle's VAE (init/ is that bundle): its own step count, the stream going on
    const vaePhase = state.continued ? { ...o.vae, steps: state.continued.refineVae ?? 0 } : o.vae;
    const vaeOffset = state.continued?.vaeStepOffset ?? 0;
    const opt = new AdamW({ lr: warmupCosine(vaePhase.lr, vaePhase.warmup, vaePhase.steps), weightDecay: 0, maxGradNorm: 1 });
    const vae = await VaeTrainer.create({
      bundleDir: initDir,
      source: o.source,
      seed: o.seed,
      batch: o.vae.batch,
      klWeight: o.vae.klWeight,
      subjectWeight: o.vae.subjectWeight ?? 1,
      optimizer: opt,
      cacheDir,
      sessionOptions,
    });
    try {
      if (!(await runPhase('vae', vaePhase, vae.group, opt, (s) => vae.step(vaeOffset + s), vaeOffset))) return { finished: false, state };
      for (const m of ['vae_encoder', 'vae_decoder'] as BundleModel[]) writeWeights(initDir, join(w, 'vae'), m, vae.group.weightsOf(m));
    } finally {
      await vae.release();
    }
    state.scalingFactor = await latentScalingFactor(join(w, 'vae', 'vae_encoder', 'model.onnx'), o.source, o.seed, o.vae.batch, sessionOptions);
    say(`VAE trained; latent scaling factor ${state.scalingFactor.toPrecision(5)}`);
    state.phase = 'diffusion';
    saveState();
    if (!(await runDecoderPhase())) return { finished: false, state };
  }

  if (state.phase === 'diffusion') {
    const opt = new AdamW({ lr: warmupCosine(o.diffusion.lr, o.diffusion.warmup, o.diffusion.steps), weightDecay: 0.01, maxGradNorm: 1 });
    const trainer = await DiffusionTrainer.create({
      bundleDir: initDir,
      vaeEncoderPath: join(w, 'vae', 'vae_encoder', 'model.onnx'),
      scalingFactor: state.scalingFactor!,
      tokenizer: ClipTokenizer.fromDir(join(initDir, 'tokenizer')),
      source: o.source,
      seed: o.seed,
      batch: o.diffusion.batch,
      emptyCaption: o.diffusion.emptyCaption,
      subjectWeight: diffusionSubjectWeight,
      optimizer: opt,
      cacheDir,
      sessionOptions,
    });
    try {
      const offset = state.continued?.stepOffset ?? 0;
      const done = await runPhase('diffusion', o.diffusion, trainer.group, opt, (s) => trainer.step(offset + s), offset);
      for (const m of ['text_encoder', 'unet'] as BundleModel[]) writeWeights(initDir, join(w, 'trained'), m, trainer.group.weightsOf(m));
      if (!done) {
        if (o.exportOnStop) {
          exportBundle({ step: opt.step });
          say(`stopped for time at diffusion step ${opt.step}: the weights so far written to ${o.out} (a resume continues the run)`);
        }
        return { finished: false, state };
      }
    } finally {
      await trainer.release();
    }
    state.phase = 'export';
    saveState();
  }

  if (state.phase === 'export') {
    if (!(await runDecoderPhase())) return { finished: false, state };
    exportBundle();
    state.phase = 'done';
    saveState();
    say(`bundle written to ${o.out}`);
  }
  return { finished: state.phase === 'done', state };
}

/**
 * The work directory of a run continuing `bundle`'s diffusion phase: init/ is the bundle (its graphs carry the
 * trained weights the diffusion trainer starts from), vae/ its VAE, the log its log; the diffusion steps go on
 * after the last one the log holds.
 */
function startContinuation(bundle: string, w: string, seed: number, preset: ToyPreset, logFile: string, refineVae: number): State {
  const index = JSON.parse(readFileSync(join(bundle, 'model_index.json'), 'utf8')) as {
    _toyworld?: { seed: number; preset: ToyPreset; partialAtStep?: number };
  };
  const marker = index._toyworld;
  if (!marker) throw new Error(`${bundle} was not trained by @dynasyn/toyworld-backbone (model_index.json has no _toyworld)`);
  if (marker.seed !== seed || marker.preset !== preset)
    throw new Error(`${bundle} is seed ${marker.seed} (${marker.preset}); continue it with --seed ${marker.seed} --preset ${marker.preset}`);
  const log = readBundleLog(bundle);
  const { diffusion: last, vae: lastVae } = lastLoggedSteps(log);
  if (last < 0) throw new Error(`${bundle}'s training log holds no diffusion step`);
  const scalingFactor = (JSON.parse(readFileSync(join(bundle, 'vae_decoder', 'config.json'), 'utf8')) as { scaling_factor: number }).scaling_factor;
  const initDir = join(w, 'init');
  rmSync(`${initDir}.tmp`, { recursive: true, force: true });
  cpSync(bundle, `${initDir}.tmp`, { recursive: true });
  for (const m of ['vae_encoder', 'vae_decoder'] as BundleModel[]) cpSync(join(bundle, m), join(w, 'vae', m), { recursive: true });
  mkdirSync(join(w, 'continued-from'), { recursive: true });
  cpSync(join(bundle, 'MODEL_CARD.md'), join(w, 'continued-from', 'MODEL_CARD.md'));
  writeFileSync(logFile, log.endsWith('\n') || !log ? log : `${log}\n`);
  rmSync(initDir, { recursive: true, force: true }); // an earlier attempt that stopped before state.json was written
  renameSync(`${initDir}.tmp`, initDir);
  return {
    seed,
    preset,
    phase: refineVae > 0 ? 'vae' : 'diffusion',
    scalingFactor,
    seconds: {},
    startedAt: new Date().toISOString(),
    continued: {
      from: bundle,
      stepOffset: last + 1,
      ...(refineVae > 0 ? { vaeStepOffset: lastVae + 1, refineVae } : {}),
    },
  };
}

/** A log's lines with each (phase, step) kept once, its last line (a resume repeats the steps after its checkpoint), in log order. */
export function lastLinePerStep(log: string): string {
  const lines = log.split('\n').filter(Boolean);
  const keys = lines.map((l) => {
    const { phase, step } = JSON.parse(l) as { phase: Phase; step: number };
    return `${phase}:${step}`;
  });
  const last = new Map(keys.map((k, i) => [k, i]));
  return lines.filter((_, i) => last.get(keys[i]!) === i).join('\n') + (lines.length ? '\n' : '');
}

/** The training log's name in a bundle: the work directory's train-log.jsonl, gzipped. */
export const BUNDLE_LOG = 'train-log.jsonl.gz';

/** A bundle's training log as text: BUNDLE_LOG, or the plain train-log.jsonl of bundles written before it was compressed. */
export function readBundleLog(bundle: string): string {
  const gz = join(bundle, BUNDLE_LOG);
  if (existsSync(gz)) return gunzipSync(readFileSync(gz)).toString('utf8');
  const plain = join(bundle, 'train-log.jsonl');
  if (existsSync(plain)) return readFileSync(plain, 'utf8');
  throw new Error(`${bundle} holds no training log (${BUNDLE_LOG} or train-log.jsonl)`);
}

/** The highest step of each phase in a train-log.jsonl's text (-1: none), in one pass over it. */
function lastLoggedSteps(log: string): Record<Phase, number> {
  const last: Record<Phase, number> = { vae: -1, decoder: -1, diffusion: -1 };
  for (const line of log.split('\n'))
    if (line) {
      const l = JSON.parse(line) as { phase: Phase; step: number };
      if (l.phase in last) last[l.phase] = Math.max(last[l.phase], l.step);
    }
  return last;
}

/** 1 / std of the trained VAE's latents (posterior means) over a few batches of the stream: diffusion then sees unit-variance latents. */
export async function latentScalingFactor(
  encoderPath: string,
  source: ExampleSource,
  seed: number,
  batch: number,
  sessionOptions: ort.InferenceSession.SessionOptions,
  batches = 8,
): Promise<number> {
  const session = await ort.InferenceSession.create(encoderPath, sessionOptions);
  let sum = 0,
    sq = 0,
    n = 0;
  try {
    for (let s = 0; s < batches; s++) {
      const x = stackImages(await batchAt(source, seed + 2, s, batch));
      const m = (await session.run({ sample: new ort.Tensor('float32', x, [batch, 3, source.size, source.size]) })).latent_sample!;
      const [, c2, h, w] = m.dims as number[];
      const per = (c2! / 2) * h! * w!,
        data = m.data as Float32Array;
      for (let b = 0; b < batch; b++)
        for (let i = 0; i < per; i++) {
          const v = data[b * 2 * per + i]!;
          sum += v;
          sq += v * v;
          n++;
        }
    }
  } finally {
    await session.release();
  }
  const mean = sum / n;
  return 1 / Math.sqrt(sq / n - mean * mean);
}
