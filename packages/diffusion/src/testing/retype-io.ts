/**
 * Test helper: a copy of a model whose graph inputs/outputs are declared in another element type, with
 * Casts at the boundary, the way an fp16 or int32-id export presents itself to the runtime. The model's
 * arithmetic is unchanged inside, so outputs differ only by the boundary conversion.
 */
import { attrs, loadModel, saveModel } from '@dynasyn/ort-training';

export interface Retype {
  inputs?: Record<string, number>;
  outputs?: Record<string, number>;
}

export function retypeIo(file: string, outFile: string, r: Retype): void {
  const model = loadModel(file);
  const g = model.graph;
  const rename = (from: string, to: string) => {
    for (const n of g.nodes) {
      n.inputs = n.inputs.map((x) => (x === from ? to : x));
      n.outputs = n.outputs.map((x) => (x === from ? to : x));
    }
  };
  const head = [];
  for (const [name, dtype] of Object.entries(r.inputs ?? {})) {
    const v = g.inputs.find((x) => x.name === name)!;
    rename(name, `${name}__orig`);
    head.push({ name: `cast_in_${name}`, opType: 'Cast', domain: '', inputs: [name], outputs: [`${name}__orig`], attributes: attrs({ to: v.dtype }) });
    v.dtype = dtype;
  }
  g.nodes.unshift(...head);
  for (const [name, dtype] of Object.entries(r.outputs ?? {})) {
    const v = g.outputs.find((x) => x.name === name)!;
    rename(name, `${name}__orig`);
    g.nodes.push({ name: `cast_out_${name}`, opType: 'Cast', domain: '', inputs: [`${name}__orig`], outputs: [name], attributes: attrs({ to: dtype }) });
    v.dtype = dtype;
  }
  saveModel(model, outFile);
}
