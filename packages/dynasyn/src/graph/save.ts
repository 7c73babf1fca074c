/**
 * Putting a built graph where onnxruntime can load it. onnxruntime reads external data only from beside
 * the model file, so a graph that references the bundle's weights is saved with ort-training's saveModel,
 * which hard-links (or copies) the data files next to it; a graph with inline weights (the tiny bundle)
 * goes to onnxruntime as bytes. TrainingSession.create({ model }) needs neither: it derives the training
 * graph and saves it into its cache the same way.
 */
import path from 'node:path';
import { isExternal, saveModel, serializeModel, type OnnxModel } from '@dynasyn/ort-training';
import { DiffusionError } from '@dynasyn/diffusion';

/** Whether any initializer lives in an external data file. */
export const hasExternalData = (model: OnnxModel): boolean => [...model.graph.initializers.values()].some((i) => isExternal(i.data));

/** Save to `file`; external data files are linked beside it (returns the absolute path). */
export function saveGraphModel(model: OnnxModel, file: string): string {
  const abs = path.resolve(file);
  saveModel(model, abs);
  return abs;
}

/**
 * What to give `ort.InferenceSession.create`: the serialized bytes when every weight is inline, else the
 * path of `<dir>/<name>.onnx` written by saveGraphModel (`dir` is then required).
 */
export function modelSource(model: OnnxModel, dir?: string, name = 'model'): string | Uint8Array {
  if (!hasExternalData(model)) return serializeModel(model);
  if (!dir) throw new DiffusionError('BAD_ARGUMENT', `model ${model.graph.name} references external data: give a directory to save it in`);
  return saveGraphModel(model, path.join(dir, `${name}.onnx`));
}
