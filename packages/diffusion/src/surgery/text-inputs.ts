/**
 * Text encoders whose only fed input is `input_ids`. optimum exports SD's CLIPTextModel with `input_ids`
 * alone, but other exports also take `position_ids` (transformers' forward has it as an argument) or an
 * `attention_mask`. The pipelines and the training graph feed ids only, so such inputs become what the
 * model computes when they are not given: position ids 0..L-1 for every row, a mask of ones.
 */
import { DataType, fromNumbers, type OnnxModel } from '@dynasyn/ort-training';
import { DiffusionError } from '../errors.js';
import { NodeFactory, copyModel } from './edit.js';

const POSITION_IDS = /(^|[^a-z])position_?ids$/i;
const ATTENTION_MASK = /(^|[^a-z])attention_?mask$/i;

/** Names of the graph inputs (other than `inputIdsName`) that withIdsOnlyInputs fills in. */
export function extraTextInputs(model: OnnxModel, inputIdsName = 'input_ids'): string[] {
  const g = model.graph;
  return g.inputs.filter((v) => v.name !== inputIdsName && !g.initializers.has(v.name)).map((v) => v.name);
}

/**
 * `model` itself when `input_ids` is its only input; else a copy where `position_ids` is
 * Expand(Range(0, L)[None], Shape(input_ids)), L the ids' length at run time, and `attention_mask` ConstantOfShape(Shape(input_ids), 1).
 * Any other extra input is refused with its name.
 */
export function withIdsOnlyInputs(model: OnnxModel, inputIdsName = 'input_ids'): OnnxModel {
  const extra = extraTextInputs(model, inputIdsName);
  if (extra.length === 0) return model;
  const copy = copyModel(model);
  const g = copy.graph;
  const ids = g.inputs.find((v) => v.name === inputIdsName);
  if (!ids) throw new DiffusionError('BAD_MODEL', `the text encoder has no input ${inputIdsName} (inputs: ${g.inputs.map((v) => v.name).join(', ')})`);
  const f = new NodeFactory(g, copy, 'ids_only');
  const shape = f.add('Shape', [inputIdsName]);
  for (const name of extra) {
    const v = g.inputs.find((x) => x.name === name)!;
    if (POSITION_IDS.test(name)) {
      // Range(0, L) with L read from the ids at run time (optimum exports the sequence axis as symbolic)
      const t = v.dtype === DataType.INT32 ? DataType.INT32 : DataType.INT64;
      const length = f.add('Gather', [shape, f.constant(fromNumbers(DataType.INT64, [], [-1]), 'last_axis')], { axis: 0 });
      const len = t === DataType.INT64 ? length : f.add('Cast', [length], { to: t });
      const range = f.add('Range', [f.constant(fromNumbers(t, [], [0]), 'zero'), len, f.constant(fromNumbers(t, [], [1]), 'one')]);
      const positions = f.add('Expand', [f.unsqueeze(range, [0]), shape]);
      f.add(v.dtype === t ? 'Identity' : 'Cast', [positions], v.dtype === t ? {} : { to: v.dtype }, name);
    } else if (ATTENTION_MASK.test(name)) {
      f.add('ConstantOfShape', [shape], { value: { tensor: { dims: [1], data_type: v.dtype, ...oneOf(v.dtype) } } }, name);
    } else {
      throw new DiffusionError(
        'UNSUPPORTED',
        `the text encoder takes an input ${name} besides ${inputIdsName}; only position_ids and attention_mask can be filled in`,
      );
    }
    g.inputs = g.inputs.filter((x) => x.name !== name);
  }
  g.sortTopologically();
  return copy;
}

/** A TensorProto payload holding the value 1 in `dtype`. */
function oneOf(dtype: number): Record<string, unknown> {
  if (dtype === DataType.INT64) return { int64_data: [1] };
  if (dtype === DataType.FLOAT) return { float_data: [1] };
  if (dtype === DataType.INT32 || dtype === DataType.BOOL || dtype === DataType.INT8 || dtype === DataType.UINT8) return { int32_data: [1] };
  if (dtype === DataType.FLOAT16) return { int32_data: [0x3c00] };
  throw new DiffusionError('UNSUPPORTED', `attention_mask of ONNX type ${dtype}`);
}
