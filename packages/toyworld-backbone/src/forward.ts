/**
 * Forward passes with the weights fed as inputs: the graph's float initializers become graph inputs, so the
 * same onnxruntime session runs the current weights of a model while it trains (the VAE encoder before its
 * decoder's step, the text encoder before the UNet's).
 */
import * as ort from 'onnxruntime-node';
import { DataType, serializeModel, type HostTensor, type OnnxModel } from '@dynasyn/ort-training';

export class FedWeightsForward {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly weights: string[],
  ) {}

  /** `model` is modified: its float initializers are turned into graph inputs. */
  static async create(model: OnnxModel, sessionOptions: ort.InferenceSession.SessionOptions): Promise<FedWeightsForward> {
    const g = model.graph;
    const weights: string[] = [];
    for (const init of [...g.initializers.values()]) {
      if (init.dtype !== DataType.FLOAT) continue;
      g.initializers.delete(init.name);
      g.addInput({ name: init.name, dtype: init.dtype, shape: init.dims });
      weights.push(init.name);
    }
    return new FedWeightsForward(await ort.InferenceSession.create(serializeModel(model), sessionOptions), weights);
  }

  async run(inputs: Record<string, ort.Tensor>, weights: Map<string, HostTensor>, output: string): Promise<Float32Array> {
    const feeds: Record<string, ort.Tensor> = { ...inputs };
    for (const w of this.weights) {
      const t = weights.get(w);
      if (!t) throw new Error(`no value for weight ${w}`);
      feeds[w] = new ort.Tensor('float32', t.data as Float32Array, t.dims);
    }
    const out = await this.session.run(feeds);
    return out[output]!.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
