/** The tiny graphs carry the structure of torch.onnx SD exports that graph surgery relies on. */
import { inferTypes, type Graph, type Node, type OnnxModel } from '@dynasyn/ort-training';
import { buildTinyTextEncoder, buildTinyUnet, buildTinyVaeDecoder, buildTinyVaeEncoder, TINY_BUNDLE_FACTS } from './index.js';

let unet: OnnxModel;
let text: OnnxModel;
beforeAll(() => {
  unet = buildTinyUnet(0);
  text = buildTinyTextEncoder(0, 1107);
});

/** Every tensor `name` depends on (graph inputs and node outputs). */
function ancestors(g: Graph, name: string): Set<string> {
  const producers = g.producers();
  const seen = new Set<string>();
  const stack = [name];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    for (const i of producers.get(t)?.inputs ?? []) if (i) stack.push(i);
  }
  return seen;
}

const ops = (g: Graph, op: string): Node[] => g.nodes.filter((n) => n.opType === op);

describe('tiny graphs', () => {
  it('are opset 17 / IR 8 with a symbolic batch on every input and output', () => {
    for (const m of [unet, text, buildTinyVaeEncoder(0), buildTinyVaeDecoder(0)]) {
      expect(m.irVersion).toBe(8);
      expect(m.opsetImports).toEqual([{ domain: '', version: 17 }]);
      for (const v of [...m.graph.inputs, ...m.graph.outputs]) expect(v.shape?.[0]).toBe('batch');
    }
    expect(unet.graph.inputs.map((v) => [v.name, v.shape])).toEqual([
      ['sample', ['batch', 4, 32, 32]],
      ['timestep', ['batch']],
      ['encoder_hidden_states', ['batch', 77, 64]],
    ]);
  });

  it('name attention Softmaxes by diffusers scope, attn2 at 32, 16 and 8 latent cells in down and up blocks', () => {
    const { types } = inferTypes(unet.graph, { inputShapes: { sample: [1, 4, 32, 32], timestep: [1], encoder_hidden_states: [1, 77, 64] }, opset: 17 });
    const cross = ops(unet.graph, 'Softmax').filter((n) => n.name.includes('/attn2/'));
    const bySide = new Map<number, string[]>();
    for (const n of cross) {
      const [bh, q, k] = types.get(n.outputs[0]!)!.dims as [number, number, number];
      expect([bh, k]).toEqual([TINY_BUNDLE_FACTS.unet.heads, 77]); // heads folded into the batch
      const side = Math.sqrt(q);
      bySide.set(side, [...(bySide.get(side) ?? []), n.name.split('/')[1]!]);
    }
    expect(Object.fromEntries(bySide)).toEqual({
      32: ['down_blocks.0', 'up_blocks.2', 'up_blocks.2'],
      16: ['down_blocks.1', 'up_blocks.1', 'up_blocks.1'],
      8: ['down_blocks.2', 'mid_block', 'up_blocks.0', 'up_blocks.0'],
    });
    expect(cross.map((n) => n.name)).toContain('/down_blocks.1/attentions.0/transformer_blocks.0/attn2/Softmax');
    // structurally: Softmax <- Mul <- MatMul(q, k^T), and k's projection (to_k) reads encoder_hidden_states in attn2 only
    const producers = unet.graph.producers();
    for (const n of ops(unet.graph, 'Softmax')) {
      const scores = producers.get(producers.get(n.inputs[0]!)!.inputs[0]!)!;
      let k = producers.get(scores.inputs[1]!)!;
      while (!(k.opType === 'MatMul' && unet.graph.initializers.has(k.inputs[1]!))) k = producers.get(k.inputs[0]!)!;
      expect({ n: n.name, key: k.name.split('/').slice(-2)[0], ctx: k.inputs[0] === 'encoder_hidden_states' }).toEqual({
        n: n.name,
        key: 'to_k',
        ctx: n.name.includes('/attn2/'),
      });
    }
  });

  it('emit the torch.onnx forms: GroupNorm via InstanceNormalization, erf GELU, MatMul with onnx::MatMul_N weights, Resize, Trilu', () => {
    const g = unet.graph;
    const producers = g.producers();
    const consumers = g.consumers();
    for (const inorm of ops(g, 'InstanceNormalization')) {
      expect(producers.get(inorm.inputs[0]!)?.opType).toBe('Reshape');
      const chain = [consumers.get(inorm.outputs[0]!)![0]!];
      for (let i = 0; i < 2; i++) chain.push(consumers.get(chain[i]!.outputs[0]!)![0]!);
      expect(chain.map((n) => n.opType)).toEqual(['Reshape', 'Mul', 'Add']);
      expect(chain[1]!.inputs[1]).toMatch(/^onnx::Mul_\d+$/);
      expect(chain[2]!.inputs[1]).toMatch(/^onnx::Add_\d+$/);
    }
    const matmulWeights = ops(g, 'MatMul')
      .map((n) => n.inputs[1]!)
      .filter((i) => g.initializers.has(i));
    expect(matmulWeights.length).toBeGreaterThan(100);
    for (const w of matmulWeights) expect(w).toMatch(/^onnx::MatMul_\d+$/);
    expect(ops(g, 'Erf').length).toBe(10); // one GEGLU per transformer block
    expect(ops(g, 'LayerNormalization').length).toBe(30);
    expect(ops(g, 'Resize').length).toBe(2);
    expect(g.initializers.has('down_blocks.0.resnets.0.conv1.weight')).toBe(true);
    expect(ops(text.graph, 'Trilu').length).toBe(1);
    expect(ops(text.graph, 'ArgMax').length).toBe(1);
  });

  it('take the batch size of every Reshape target from the data (Shape -> Gather -> Concat) or keep it (0/-1)', () => {
    for (const m of [unet, text, buildTinyVaeEncoder(0), buildTinyVaeDecoder(0)]) {
      const producers = m.graph.producers();
      for (const r of ops(m.graph, 'Reshape')) {
        const src = producers.get(r.inputs[1]!)!;
        if (src.opType === 'Constant') {
          const t = src.attributes[0]!.t!;
          const first = Number(new BigInt64Array(Uint8Array.from(t.raw_data!).buffer)[0]);
          expect({ r: r.name, first }).toEqual({ r: r.name, first: first === 0 ? 0 : -1 });
        } else {
          expect({ r: r.name, op: src.opType }).toEqual({ r: r.name, op: src.opType === 'Shape' ? 'Shape' : 'Concat' });
          if (src.opType === 'Concat') expect([...ancestors(m.graph, src.outputs[0]!)].some((a) => producers.get(a)?.opType === 'Shape')).toBe(true);
        }
      }
    }
  });
});
