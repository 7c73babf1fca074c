/**
 * Several training sessions optimized as one model: the trainable weights of each (prefixed by its model,
 * as the bundle's models reuse names such as `onnx::MatMul_1000`) live here, one AdamW updates them all
 * with one global gradient-norm clip. The group holds the sessions' own tensors (TrainingSession.trainableRef), so
 * the in-place update is what the next step reads: no copy of the weights per step.
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
    const models = parts.map((p) => p.model);
    if (new Set(models).size !== models.length) throw new Error(`a model group holds each model once, got ${models.join(', ')}`);
    for (const p of parts) for (const w of p.weights) this.params.set(`${p.model}/${w}`, p.session.trainableRef(w));
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
    part.session.setTrainable(name.slice(slash + 1), value);
    this.params.set(name, part.session.trainableRef(name.slice(slash + 1)));
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

  /** One AdamW update of every weight from `grads` (group names), in place in the sessions' own tensors. */
  update(optimizer: AdamW, grads: Map<string, HostTensor>): OptimizerStepInfo {
    return optimizer.update(this.params, grads);
  }
}
