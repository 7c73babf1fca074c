/**
 * Adapters from the graph surgeries (src/surgery/) to something onnxruntime can load. A rewritten model
 * whose weights are all inline goes to onnxruntime as bytes (nothing on disk); one with external data is
 * saved with ort-training's saveModel into a cache directory, because onnxruntime reads external data only
 * from beside the model file (saveModel hard-links the data files there, or copies them).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isExternal, loadModel, saveModel, serializeModel, type OnnxModel } from '@dynasyn/ort-training';
import type { ModelBundle } from '../types.js';
import { withPlaceholderEmbeddings } from '../surgery/placeholders.js';
import { withIdsOnlyInputs } from '../surgery/text-inputs.js';
import { withAttentionCapture, type UNetBlock } from '../surgery/attention.js';

/** Which cross-attention layers to capture (see surgery/attention.ts). */
export interface UnetAttentionOptions {
  /** [h, w] of the captured layers in latent cells; default latent/4 (rounded up). */
  grid?: [number, number];
  /** Blocks whose layers are averaged; default down and up (not mid). */
  blocks?: UNetBlock[];
}

/** Where a rewritten model lives: bytes, or a file plus the temporary directory to remove on release. */
export interface RewrittenModel {
  source: string | Uint8Array;
  /** A directory this module created and that the caller removes when done. */
  tempDir?: string;
}

/** Bytes when every weight is inline, else a file in `cacheDir/<name>/` (a fresh temp dir without cacheDir). */
export function materialize(model: OnnxModel, name: string, cacheDir?: string): RewrittenModel {
  const external = [...model.graph.initializers.values()].some((i) => isExternal(i.data));
  if (!external) return { source: serializeModel(model) };
  const tempDir = cacheDir ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-model-'));
  const file = path.join(cacheDir ?? tempDir!, name, 'model.onnx');
  saveModel(model, file);
  return { source: file, ...(tempDir ? { tempDir } : {}) };
}

/** The bundle's text encoder as a model that takes `input_ids` only (position ids or a mask filled in: surgery/text-inputs). */
export function textEncoderModel(bundle: ModelBundle): OnnxModel {
  return withIdsOnlyInputs(loadModel(bundle.textEncoderPath));
}

export function placeholderModel(
  bundle: ModelBundle,
  count: number,
  options: { cacheDir?: string; baseVocabSize?: number },
): RewrittenModel & { input: string } {
  const edited = withPlaceholderEmbeddings(textEncoderModel(bundle), {
    numPlaceholders: count,
    ...(options.baseVocabSize !== undefined ? { baseVocabSize: options.baseVocabSize } : {}),
  });
  return { ...materialize(edited.model, `text_encoder_placeholders_${count}`, options.cacheDir), input: edited.inputName };
}

/**
 * The UNet with an `attention_probs [B, h*w, 77]` output. Layers are located with batch 1 at the bundle's
 * native latent size; the added nodes keep the batch dimension free, so any batch runs.
 */
export function attentionCaptureModel(
  bundle: ModelBundle,
  opts: UnetAttentionOptions,
  cacheDir?: string,
): RewrittenModel & { output: string; height: number; width: number } {
  const side = bundle.sampleSize / bundle.vaeScaleFactor;
  const unet = loadModel(bundle.unetPath);
  // a UNet exported with one timestep for the batch may take it as a 0-d tensor
  const scalarTimestep = unet.graph.inputs.find((v) => v.name === 'timestep')?.shape?.length === 0;
  const captured = withAttentionCapture(unet, {
    inputShapes: {
      sample: [1, bundle.latentChannels, side, side],
      timestep: scalarTimestep ? [] : [1],
      encoder_hidden_states: [1, bundle.maxTokens, bundle.textEmbedDim],
    },
    ...(opts.grid ? { grid: opts.grid } : {}),
    ...(opts.blocks ? { blocks: opts.blocks } : {}),
  });
  const [height, width] = captured.layers[0]!.grid;
  return { ...materialize(captured.model, 'unet_attention', cacheDir), output: captured.outputName, height, width };
}

export function removeTempDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
