/**
 * Several training sessions optimized as one model: the trainable weights of each (prefixed by its model,
 * as the bundle's models reuse names such as `onnx::MatMul_1000`) live here, one AdamW updates them all
 * with one global gradient-norm clip, and the sessions are handed the new values after each update.
 * Implements TrainableStore, so saveCheckpoint / loadCheckpoint save and restore the whole group.
 */
import type { AdamW, HostTensor, OptimizerStepInfo, TrainableStore, TrainingSession } from '@dynasyn/ort-training';

export interface GroupPart {
  /** The model's folder in the bundle (`unet`, `text_encoder`, ...). */
  model: string;
  session: TrainingSession;
  /** The session's trainable weights (trainable graph inputs such as activations are not listed). */
  weights: string[];
}

const copy = (t: HostTensor): HostTensor => ({ dtype: t.dtype, dims: [...t.dims], data: t.data.slice() });

export class ModelGroup implements TrainableStore {
  readonly params = new Map<string, HostTensor>();

  constructor(private readonly parts: GroupPart[]) {
    for (const p of parts) for (const w of p.weights) this.params.set(`${p.model}/${w}`, p.session.getTrainable(w));
  }

  get trainableNames(): readonly string[] {
    return [...this.params.keys()];
  }

  getTrainable(name: string): HostTensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`${name} is not a weight of this model group`);
    return copy(t);
  }

  setTrainable(name: string, value: HostTensor): void {
    const slash = name.indexOf('/');
    const part = this.parts.find((p) => p.model === name.slice(0, slash));
    if (!part || !this.params.has(name)) throw new Error(`${name} is not a weight of this model group`);
    this.params.set(name, copy(value));
    part.session.setTrainable(name.slice(slash + 1), value);
  }

  /** The current weights of one model, by their names in its graph (not copies: read-only). */
  weightsOf(model: string): Map<string, HostTensor> {
    const prefix = `${model}/`;
    return new Map([...this.params].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  }

  /** Gradients of one session's step, under the group's names (the session's other trainables left out). */
  gradsOf(model: string, grads: Map<string, HostTensor>, into = new Map<string, HostTensor>()): Map<string, HostTensor> {
    const part = this.parts.find((p) => p.model === model)!;
    for (const w of part.weights) into.set(`${model}/${w}`, grads.get(w)!);
    return into;
  }

  /** One AdamW update of every weight from `grads` (group names), then the sessions get the new values. */
  update(optimizer: AdamW, grads: Map<string, HostTensor>): OptimizerStepInfo {
    const info = optimizer.update(this.params, grads);
    if (!info.skipped) for (const p of this.parts) for (const w of p.weights) p.session.setTrainable(w, this.params.get(`${p.model}/${w}`)!);
    return info;
  }
}
