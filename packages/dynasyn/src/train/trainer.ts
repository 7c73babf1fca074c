/**
 * The two-phase trainer (METHOD.md "Two phases"): phase 1 trains only the placeholder rows, phase 2 the
 * placeholder rows plus adapters (or chosen tensors in `full` mode) with a FRESH AdamW state. Each step:
 * draw (union, t, noise; the augmented example in turn), run the frozen original model on the class
 * prompts (A(c_hat)), forward + backward of the training graph, AdamW with clipping; progress events and
 * a metrics row per step; checkpoints every K steps, at phase ends and on cancel; exact resume.
 */
import { GaussianRng, PLACEHOLDER_INPUT, type ExecutionProvider, type ModelBundle } from '@dynasyn/diffusion';
import { AdamW, TrainingSession, type HostTensor, type StepResult } from '@dynasyn/ort-training';
import { buildTrainingModel, type TrainingModel } from '../graph/index.js';
import {
  MAX_PLACEHOLDER_VECTORS,
  type AugmentedExample,
  type LearnedConcepts,
  type PersonalizationInput,
  type ProgressListener,
  type TrainOptions,
} from '../types.js';
import { alignmentOf, evaluationDraw, type AlignmentReport, type AlignmentSnapshot } from './alignment.js';
import { buildBatch, buildStepBatch, splitRows, type BatchSetup, type ClassMapRunner } from './batch.js';
import {
  checkpointTensor,
  readTrainCheckpointState,
  restoreTrainCheckpoint,
  runKey,
  writeTrainCheckpoint,
  type CheckpointState,
  type TrainMetricsRow,
} from './checkpoint.js';
import { TrainingError } from './errors.js';
import { cleanUp } from '@dynasyn/domain';
import { attentionGrid, encodeLatents, frozenClassModel, placeholderStartIds, placeholderTokenizer, trainingScheduler } from './setup.js';

export type { TrainMetricsRow } from './checkpoint.js';

export interface TrainPersonalizationOptions {
  bundle: ModelBundle;
  /** Image and subjects, fitted to the backbone's size (see loadInput). */
  input: PersonalizationInput;
  /** Augmented examples for L_AUG; empty turns L_AUG off. */
  augmented?: readonly AugmentedExample[];
  options: TrainOptions;
  seed: number;
  /** Where derived training graphs (and rewritten models) are cached; default ort-training's cache. */
  cacheDir?: string;
  /** Checkpoints go here; a checkpoint found here is resumed. Default: no checkpoints. */
  checkpointDir?: string;
  executionProviders?: ExecutionProvider[];
  intraOpNumThreads?: number;
  onProgress?: ProgressListener;
  /** Called with each step's metrics row as it is made. */
  onMetrics?: (row: TrainMetricsRow) => void;
  /** Stops training at the next step boundary (a checkpoint is written there when checkpointDir is set). */
  signal?: AbortSignal;
  /**
   * Rows of the training graph per forward/backward pass: 2 (the reference and the augmented row together)
   * or 1 (two passes whose gradients are added: the same step, half the activation memory). Default
   * defaultRowsPerPass(bundle): 1 from SD 2.1's 96x96 latents (768 px) up, else 2.
   */
  rowsPerPass?: 1 | 2;
  /** Fixed timestep of the alignment evaluation; default T/2. */
  evalTimestep?: number;
  /** IoU threshold on the max-normalised maps; default 0.5. */
  evalThreshold?: number;
}

export interface TrainResult {
  concepts: LearnedConcepts;
  /** Every step of both phases (including those done before a resume). */
  metrics: TrainMetricsRow[];
  /** Attention-vs-mask numbers and maps before and after training. */
  alignment: AlignmentReport;
  /** Where the run resumed, when it did. */
  resumedFrom?: { phase: 1 | 2; step: number };
  /** Where training differs from what the options asked (e.g. a model that took no adapters). */
  notes: string[];
}

interface Phase {
  phase: 1 | 2;
  session: TrainingSession;
  built: TrainingModel;
}

/** Train the placeholders (and adapters) of `input`'s subjects; see the file header. */
export async function trainPersonalization(o: TrainPersonalizationOptions): Promise<TrainResult> {
  const { bundle, input, options } = o;
  const augmented = o.augmented ?? [];
  const N = input.subjects.length;
  if (N < 1) throw new TrainingError('BAD_INPUT', 'training needs at least one subject');
  const runtime = {
    ...(o.executionProviders ? { executionProviders: o.executionProviders } : {}),
    ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
  };
  const key = runKey({ seed: o.seed, options, input, augmented, backbone: bundle.dir });
  const saved = readTrainCheckpointState(o.checkpointDir, key);

  const vectors = options.placeholderVectors ?? 1;
  if (!Number.isInteger(vectors) || vectors < 1 || vectors > MAX_PLACEHOLDER_VECTORS)
    throw new TrainingError(
      'BAD_INPUT',
      `placeholderVectors must be an integer from 1 to ${MAX_PLACEHOLDER_VECTORS}, got ${String(options.placeholderVectors)}`,
    );
  const { tokenizer, baseVocabSize, tokens } = placeholderTokenizer(bundle, N, vectors);
  const classWords = input.subjects.map((s) => s.classWord);
  const startTokenIds = input.subjects.flatMap((s) => placeholderStartIds(tokenizer, s, vectors));
  const grid = attentionGrid(bundle, options.attentionGridDivisor);
  const rowsPerPass = o.rowsPerPass ?? defaultRowsPerPass(bundle);
  if (rowsPerPass !== 1 && rowsPerPass !== 2) throw new TrainingError('BAD_INPUT', `rowsPerPass must be 1 or 2, got ${String(o.rowsPerPass)}`);
  // Every graph the run needs is built and derived before anything is trained: a bundle that cannot be
  // personalized (an op without a gradient rule, a graph the surgery cannot read) fails here, in seconds.
  const models = new Map<1 | 2, TrainingModel>();
  const needed = ([1, 2] as const).filter(
    (phase) => !(saved && saved.phase > phase) && (phase === 1 ? options.phase1.steps > 0 || options.phase2.steps === 0 : options.phase2.steps > 0),
  );
  for (const phase of needed) {
    const built = buildTrainingModel(bundle, {
      numPlaceholders: N * vectors,
      maxSubjects: N,
      baseVocabSize,
      phase,
      adapters: options.adapters,
      grid,
      icaNormalizeBoth: options.icaNormalizeBoth,
      batch: rowsPerPass,
      placeholderTokenIds: startTokenIds,
      seed: o.seed,
    });
    await TrainingSession.prepare({ ...sessionSpec(built), ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) });
    models.set(phase, built);
  }
  const notes = [...new Set([...models.values()].flatMap((m) => m.notes))];
  const latents = await encodeLatents(bundle, input, augmented, runtime);
  const scheduler = trainingScheduler(bundle);
  const T = scheduler.config.numTrainTimesteps;
  const setup: Omit<BatchSetup, 'idsType' | 'timestepType' | 'latentType' | 'frozenInGraph'> = {
    subjects: input.subjects,
    tokenizer,
    scheduler,
    grid,
    slots: N,
    maxTokens: bundle.maxTokens,
    ...latents,
    lambdas: augmented.length ? options.lambdas : { ...options.lambdas, aug: 0 },
    flipProbability: options.flipProbability,
    ...(options.subjectsPerStep ? { subjectsPerStep: options.subjectsPerStep } : {}),
    ...(options.maskedDiffusion === false ? { maskedDiffusion: false } : {}),
    ...(options.priorPreservation ? { priorPreservation: true } : {}),
  };
  // A(c_hat) comes from each graph's own frozen branch; only a graph without one ('full' mode) needs a separate frozen model
  const frozen = [...models.values()].some((m) => !m.inputs.classSelect) ? await frozenClassModel(bundle, grid, runtime, o.cacheDir) : undefined;
  const root = new GaussianRng(o.seed);
  const evalT = o.evalTimestep ?? Math.floor(T / 2);
  const threshold = o.evalThreshold ?? 0.5;
  const evalDraw = evaluationDraw(setup, root.fork('eval'), evalT);

  const metrics: TrainMetricsRow[] = saved ? [...saved.metrics] : [];
  let before: AlignmentSnapshot | undefined = saved?.before;
  const stepsDone = (phase: 1 | 2, step: number) => (phase === 1 ? step : options.phase1.steps + step);

  const open = async (phase: 1 | 2): Promise<Phase & { setup: BatchSetup }> => {
    const built = models.get(phase)!;
    const session = await TrainingSession.create({
      ...sessionSpec(built),
      ...(o.executionProviders ? { executionProviders: o.executionProviders } : {}),
      ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
      sessionOptions: { ...TRAINING_SESSION_OPTIONS, ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}) },
    });
    for (const [name, value] of built.startValues) session.setTrainable(name, value);
    const { inputIds, timestep, noisyLatents } = built.inputs;
    return {
      phase,
      session,
      built,
      setup: {
        ...setup,
        frozenInGraph: built.inputs.classSelect !== undefined,
        idsType: inputIds.dtype,
        timestepType: timestep.dtype,
        // the step is drawn for both rows, whatever the rows per pass (splitRows cuts it per row)
        timestepDims: built.timestepPerRow ? [2] : timestep.dims,
        latentType: noisyLatents.dtype,
      },
    };
  };
  /** Forward + backward of a step's feeds: one pass of both rows, or a pass per row with the results added. */
  const run = async (p: Phase, feeds: Record<string, HostTensor>): Promise<StepResult> =>
    rowsPerPass === 2 ? p.session.step(feeds) : addPasses(p, splitRows(feeds));
  const addPasses = async (p: Phase, passes: Record<string, HostTensor>[]): Promise<StepResult> => {
    const O = p.built.outputs;
    let sum: StepResult | undefined;
    for (const feeds of passes) {
      const r = await p.session.step(feeds);
      if (!sum) {
        // a step's tensors are its own (TrainingSession.step: later steps do not touch them): the sum starts in them
        sum = r;
        continue;
      }
      sum.loss += r.loss;
      for (const [name, g] of r.grads) addInto(sum.grads.get(name)!, g, name);
      // each term comes from one row's part (the other pass's is exactly 0); the maps stay the reference row's
      for (const name of [O.md, O.m2a, O.ica, O.aug]) addInto(sum.outputs.get(name)!, r.outputs.get(name)!, name);
    }
    return sum!;
  };
  const measure = async (p: Phase & { setup: BatchSetup }, afterSteps: number): Promise<AlignmentSnapshot> => {
    const batch = await buildBatch(p.setup, evalDraw, frozen?.run);
    const r = await run(p, batch.feeds);
    const term = (name: string) => Number((r.outputs.get(name)!.data as Float32Array)[0]);
    const losses = { md: term(p.built.outputs.md), m2a: term(p.built.outputs.m2a), ica: term(p.built.outputs.ica) };
    return { afterSteps, losses, placeholders: alignmentOf(r.outputs.get(p.built.outputs.attention)!, input.subjects, tokens, grid, threshold) };
  };

  let embeddings: HostTensor | undefined;
  let last: (Phase & { setup: BatchSetup }) | undefined;
  let after: AlignmentSnapshot | undefined;
  let failure: { error: unknown } | undefined;
  try {
    for (const phase of [1, 2] as const) {
      const po = phase === 1 ? options.phase1 : options.phase2;
      if (saved && saved.phase > phase) {
        if (phase === 1) embeddings = checkpointTensor(saved.file, PLACEHOLDERS);
        continue;
      }
      if (!models.has(phase)) continue; // no steps to run in this phase (decided above, with the graphs)
      if (last) {
        const done = last;
        last = undefined; // released: the cleanup below must not release it again
        await done.session.release();
      }
      const p = (last = await open(phase));
      if (embeddings) p.session.setTrainable(PLACEHOLDERS, embeddings);
      if (!before) before = await measure(p, 0);
      const optimizer = new AdamW({ lr: po.lr, weightDecay: options.weightDecay, ...(options.maxGradNorm > 0 ? { maxGradNorm: options.maxGradNorm } : {}) });
      let step = 0;
      if (saved && saved.phase === phase) {
        restoreTrainCheckpoint(saved.file, p.session, optimizer);
        step = saved.step;
      }
      const state = (): CheckpointState => ({ phase, step, metrics, before });
      const checkpoint = () => (o.checkpointDir ? writeTrainCheckpoint(o.checkpointDir, key, p.session, optimizer, state()) : undefined);
      while (step < po.steps) {
        if (o.signal?.aborted) {
          const file = checkpoint();
          throw new TrainingError(
            'CANCELLED',
            `training cancelled in phase ${phase} after ${step} of ${po.steps} steps${file ? ` (checkpoint ${file})` : ''}`,
            {
              cause: o.signal.reason,
              state: { phase, step, ...(file ? { checkpoint: file } : {}) },
            },
          );
        }
        const t0 = performance.now();
        const augIndex = augmented.length ? stepsDone(phase, step) % augmented.length : undefined;
        const batch = await buildStepBatch(p.setup, root.fork(`step-${phase}-${step + 1}`), augIndex, frozen?.run);
        const r = await run(p, batch.feeds);
        const update = p.session.applyGradients(optimizer, r.grads);
        step++;
        const term = (name: string) => Number((r.outputs.get(name)!.data as Float32Array)[0]);
        const row: TrainMetricsRow = {
          phase,
          step,
          md: term(p.built.outputs.md),
          m2a: term(p.built.outputs.m2a),
          ica: term(p.built.outputs.ica),
          aug: term(p.built.outputs.aug),
          total: r.loss,
          lr: update.lr,
          gradNorm: update.gradNorm,
          ms: performance.now() - t0,
        };
        metrics.push(row);
        o.onMetrics?.(row);
        o.onProgress?.({ stage: 'train', phase, step, total: po.steps, losses: { md: row.md, m2a: row.m2a, ica: row.ica, aug: row.aug, total: row.total } });
        if (step === po.steps || (options.checkpointEvery > 0 && step % options.checkpointEvery === 0)) checkpoint();
      }
      embeddings = p.session.getTrainable(PLACEHOLDERS);
    }
    if (!last) throw new TrainingError('BAD_INPUT', 'nothing to train: phase 1 and phase 2 both have 0 steps and the run is complete');
    after = await measure(last, stepsDone(2, options.phase2.steps));
    const concepts = conceptsOf(last, tokens, classWords, embeddings ?? last.session.getTrainable(PLACEHOLDERS), vectors);
    return {
      concepts,
      metrics,
      notes,
      alignment: { grid, timestep: evalT, threshold, before: before!, after },
      ...(saved ? { resumedFrom: { phase: saved.phase, step: saved.step } } : {}),
    };
  } catch (error) {
    failure = { error };
    throw error;
  } finally {
    const held = last;
    await cleanUp([held && (() => held.session.release()), frozen && (() => frozen.release())], failure);
  }
}

/**
 * Attention probabilities of at least this size are recomputed in the backward pass, not kept: SD 2.1's
 * self-attention at 64x64 latents (671 MB per layer at batch 2) and 32x32 (84 MB); nothing of the tiny bundle.
 */
export const RECOMPUTE_ATTENTION_ABOVE = 64 * 2 ** 20;

/**
 * Attention whose probabilities take at least this much is computed in blocks of queries that each take
 * less (ort-training's chunkAttentionAbove): SD 2.1 at 768 px has 3.4 GB of probabilities per self-attention
 * layer at batch 2 (14 blocks), 2.1-base at 512 px 671 MB (3 blocks); the tiny bundle none. With
 * RECOMPUTE_ATTENTION_ABOVE the backward pass recomputes each block's in turn.
 */
export const CHUNK_ATTENTION_ABOVE = 256 * 2 ** 20;

/**
 * onnxruntime settings of the training session. No CPU memory arena: a step's activations go back to the
 * system when it ends instead of growing the arena step after step (SD 2.1 at 512 px: killed at 24 GB in
 * the second step with it). No pre-packing: pre-packed weights are copies (a frozen weight is read by the
 * forward and by the backward product, two packed copies besides the original); without it each weight is
 * held once, and training products are large enough that packing per call costs little.
 */
export const TRAINING_SESSION_OPTIONS = { enableCpuMemArena: false, extra: { session: { disable_prepacking: '1' } } } as const;

/**
 * What TrainingSession needs to derive a phase's graph (the same for prepare and create, so create finds the
 * cache entry; the GPU check trains through it too).
 */
export function sessionSpec(built: TrainingModel) {
  const o = built.outputs;
  return {
    model: built.model,
    loss: o.loss,
    trainable: built.trainable,
    keepOutputs: [o.md, o.m2a, o.ica, o.aug, o.attention],
    recomputeAbove: RECOMPUTE_ATTENTION_ABOVE,
    chunkAttentionAbove: CHUNK_ATTENTION_ABOVE,
  };
}

const PLACEHOLDERS = PLACEHOLDER_INPUT;

/**
 * Rows per training pass for `bundle` when the caller does not say: 1 where the latent grid has 96x96 cells
 * or more (SD 2.1 at 768 px: the UNet's activations kept for the backward pass of two rows need ~18 GB), else 2.
 */
export function defaultRowsPerPass(bundle: Pick<ModelBundle, 'sampleSize' | 'vaeScaleFactor'>): 1 | 2 {
  const side = bundle.sampleSize / bundle.vaeScaleFactor;
  return side * side >= 96 * 96 ? 1 : 2;
}

function addInto(into: HostTensor, add: HostTensor, name: string): void {
  const a = into.data,
    b = add.data;
  if (!(a instanceof Float32Array || a instanceof Float64Array) || a.constructor !== b.constructor || a.length !== b.length)
    throw new Error(`internal: cannot add the passes' ${name}: ${a.constructor.name}[${a.length}] and ${b.constructor.name}[${b.length}]`);
  for (let i = 0; i < a.length; i++) a[i]! += (b as Float32Array)[i]!;
}

function conceptsOf(p: Phase, tokens: string[], classWords: string[], embeddings: HostTensor, vectors: number): LearnedConcepts {
  const adapters = new Map<string, HostTensor>();
  if (p.phase === 2) for (const name of p.session.trainableNames) if (name !== PLACEHOLDERS) adapters.set(name, p.session.getTrainable(name));
  return {
    tokens,
    classWords,
    embeddings,
    ...(vectors > 1 ? { placeholderVectors: vectors } : {}),
    adapters,
    adapterSpec: p.phase === 2 ? [...p.built.adapters] : [],
  };
}

/** Exposed for tests: the frozen class-map runner type. */
export type { ClassMapRunner };
