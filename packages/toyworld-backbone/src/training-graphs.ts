/**
 * The bundle's forward graphs with a loss appended, for TrainingSession. The models stay apart (as the
 * bundle stores them) and are chained on the host: a downstream session also differentiates with respect
 * to its input (the decoder's `latent_sample`, the UNet's `encoder_hidden_states`), and the upstream model
 * is trained on the surrogate loss ReduceSum(output * upstream_grad), whose gradient with respect to the
 * weights is exactly the chain rule's.
 */
import { DataType, type OnnxModel } from '@dynasyn/ort-training';

/** Name of the scalar loss every training graph outputs. */
export const LOSS = 'loss';
/** Input of the surrogate-loss graphs: dL/d(output), computed downstream. */
export const UPSTREAM_GRAD = 'upstream_grad';

function addLoss(model: OnnxModel, opType: 'ReduceMean' | 'ReduceSum', from: string): void {
  const g = model.graph;
  g.addNode({ name: `/loss/${opType}`, opType, inputs: [from], outputs: [LOSS], attributes: [{ name: 'keepdims', type: 2, i: 0 }] });
  g.addOutput({ name: LOSS, dtype: DataType.FLOAT, shape: [] });
}

/** Input of the weighted MSE graphs: a per-pixel weight [B, 1, H, W], broadcast over the channels. */
export const LOSS_WEIGHT = 'loss_weight';

/**
 * loss = mean((output - target)^2): the epsilon-prediction objective for the UNet, reconstruction MSE for the decoder.
 * `weighted`: loss = mean(loss_weight * (output - target)^2), with an input `loss_weight` [B, 1, H, W] (the VAE's
 * subject-weighted reconstruction).
 */
export function withMseLoss(model: OnnxModel, output: string, target: string, weighted = false): OnnxModel {
  const g = model.graph;
  const out = g.outputs.find((o) => o.name === output);
  if (!out) throw new Error(`model has no output ${output}`);
  const shape = out.shape ?? [];
  g.addInput({ name: target, dtype: DataType.FLOAT, shape });
  g.addNode({ name: '/loss/Sub', opType: 'Sub', inputs: [output, target], outputs: ['/loss/Sub_output_0'] });
  g.addNode({ name: '/loss/Mul', opType: 'Mul', inputs: ['/loss/Sub_output_0', '/loss/Sub_output_0'], outputs: ['/loss/Mul_output_0'] });
  if (!weighted) {
    addLoss(model, 'ReduceMean', '/loss/Mul_output_0');
    return model;
  }
  if (shape.length !== 4) throw new Error(`a weighted MSE needs a 4-d output, ${output} has shape [${shape.join(', ')}]`);
  g.addInput({ name: LOSS_WEIGHT, dtype: DataType.FLOAT, shape: [shape[0]!, 1, shape[2]!, shape[3]!] });
  g.addNode({ name: '/loss/Weight', opType: 'Mul', inputs: ['/loss/Mul_output_0', LOSS_WEIGHT], outputs: ['/loss/Weight_output_0'] });
  addLoss(model, 'ReduceMean', '/loss/Weight_output_0');
  return model;
}

/** loss = sum(output * upstream_grad): backpropagates a gradient computed downstream into this model's weights. */
export function withSurrogateLoss(model: OnnxModel, output: string): OnnxModel {
  const g = model.graph;
  const out = g.outputs.find((o) => o.name === output);
  if (!out) throw new Error(`model has no output ${output}`);
  g.addInput({ name: UPSTREAM_GRAD, dtype: DataType.FLOAT, shape: out.shape ?? [] });
  g.addNode({ name: '/loss/Mul', opType: 'Mul', inputs: [output, UPSTREAM_GRAD], outputs: ['/loss/Mul_output_0'] });
  addLoss(model, 'ReduceSum', '/loss/Mul_output_0');
  return model;
}

/** Float initializers: every weight of the model (int64 buffers such as position_ids stay frozen). */
export function floatWeights(model: OnnxModel): string[] {
  return [...model.graph.initializers.values()].filter((i) => i.dtype === DataType.FLOAT).map((i) => i.name);
}
