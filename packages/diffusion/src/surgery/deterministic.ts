/**
 * VAE encoders that sample. optimum exports `vae_encoder` from `encoder(x).latent_dist.sample()` in some
 * versions: the graph draws its own noise (RandomNormalLike), so the same image gives other latents on every
 * run, and nothing can seed it from outside. The pipelines and the trainer take the posterior MEAN instead
 * (diffusers' `latent_dist.mode()`; METHOD.md: z0 is the VAE posterior mean): each random op is replaced by
 * zeros of its shape, so mean + std * eps becomes the mean.
 */
import { DataType, type Node, type OnnxModel } from '@dynasyn/ort-training';
import { NodeFactory, copyModel, int64Tensor } from './edit.js';

const RANDOM_OPS = new Set(['RandomNormalLike', 'RandomUniformLike', 'RandomNormal', 'RandomUniform']);

/** The random ops of `model` (empty for a deterministic export). */
export function randomNodes(model: OnnxModel): Node[] {
  return model.graph.nodes.filter((n) => RANDOM_OPS.has(n.opType) && (n.domain === '' || n.domain === 'ai.onnx'));
}

/** `model` itself when it draws no noise; else a copy whose random ops give zeros (see the file header). */
export function withoutSampling(model: OnnxModel): OnnxModel {
  if (randomNodes(model).length === 0) return model;
  const copy = copyModel(model);
  const g = copy.graph;
  const f = new NodeFactory(g, copy, 'no_sampling');
  for (const n of randomNodes(copy)) {
    const attr = (name: string) => n.attributes.find((a) => a.name === name);
    const dtype = attr('dtype')?.i !== undefined && attr('dtype')?.i !== null ? Number(attr('dtype')!.i) : undefined;
    const out = n.outputs[0]!;
    let zeros: Node[];
    if (n.opType.endsWith('Like')) {
      // x - x has x's shape and type; the op's dtype attribute, when given, says the output's type
      const diff = f.make('Sub', [n.inputs[0]!, n.inputs[0]!], {}, dtype === undefined ? out : undefined);
      zeros = [diff.node];
      if (dtype !== undefined) zeros.push(f.make('Cast', [diff.out], { to: dtype }, out).node);
    } else {
      const shape = (attr('shape')?.ints ?? []).map(Number);
      zeros = [
        f.make(
          'ConstantOfShape',
          [f.constant(int64Tensor(shape), 'shape')],
          {
            value: {
              tensor: {
                dims: [1],
                data_type: dtype ?? DataType.FLOAT,
                ...(dtype === DataType.FLOAT16 ? { int32_data: [0] } : dtype === DataType.DOUBLE ? { double_data: [0] } : { float_data: [0] }),
              },
            },
          },
          out,
        ).node,
      ];
    }
    g.replaceNode(n, zeros);
  }
  g.sortTopologically();
  return copy;
}
