import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel, readExternal, saveModel, serializeModel, parseModel } from './model.js';
import { initializerToHost, isExternal } from './graph.js';
import { OrtTrainingError } from './errors.js';
import { DataType, fromNumbers } from './tensor.js';
import { buildModel, randomValues } from './testing/gradcheck.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ort-training-model-'));

/** y = x @ W + b with W [3,4] large enough to be externalized. */
function linearModel() {
  return buildModel({
    inputs: [{ name: 'x', dims: [2, 3] }],
    constants: { W: fromNumbers(DataType.FLOAT, [3, 4], randomValues(12, 3)), b: fromNumbers(DataType.FLOAT, [4], [1, 2, 3, 4]) },
    nodes: [
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'b'], outputs: ['y'] },
    ],
    outputs: ['y'],
  });
}

async function runY(file: string): Promise<number[]> {
  const s = await ort.InferenceSession.create(file);
  const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, -1, 0, 1]), [2, 3]) });
  return Array.from(out.y!.data as Float32Array);
}

describe('model IO', () => {
  test('round trip keeps nodes, initializers and results', async () => {
    const dir = tmp();
    saveModel(linearModel(), path.join(dir, 'a.onnx'));
    const m = loadModel(path.join(dir, 'a.onnx'));
    expect(m.graph.nodes.map((n) => n.opType)).toEqual(['MatMul', 'Add']);
    expect(Array.from(initializerToHost(m.graph.initializers.get('b')!).data as Float32Array)).toEqual([1, 2, 3, 4]);
    saveModel(m, path.join(dir, 'b.onnx'));
    expect(await runY(path.join(dir, 'b.onnx'))).toEqual(await runY(path.join(dir, 'a.onnx')));
  });

  test('external data is referenced, not read, and hard-linked beside a model saved elsewhere', async () => {
    const src = tmp(),
      dst = tmp();
    saveModel(linearModel(), path.join(src, 'model.onnx'), { externalizeAbove: 16 });
    expect(fs.existsSync(path.join(src, 'model.onnx.data'))).toBe(true);
    const m = loadModel(path.join(src, 'model.onnx'));
    const W = m.graph.initializers.get('W')!;
    expect(isExternal(W.data)).toBe(true);
    expect(isExternal(m.graph.initializers.get('b')!.data)).toBe(false); // 16 bytes: below the threshold
    saveModel(m, path.join(dst, 'copy.onnx'));
    const linked = path.join(dst, 'model.onnx.data');
    expect(fs.statSync(linked).ino).toBe(fs.statSync(path.join(src, 'model.onnx.data')).ino);
    expect(await runY(path.join(dst, 'copy.onnx'))).toEqual(await runY(path.join(src, 'model.onnx')));
  });

  test('large inline weights are referenced in their own model file: a derived model links the file, copies nothing, runs the same', async () => {
    // y = x @ W with W [3, 2^18] inline (3 MiB, above INLINE_REFERENCE_MIN_BYTES); b stays held (16 bytes)
    const cols = 1 << 18;
    const big = buildModel({
      inputs: [{ name: 'x', dims: [2, 3] }],
      constants: { W: fromNumbers(DataType.FLOAT, [3, cols], randomValues(3 * cols, 5)), b: fromNumbers(DataType.FLOAT, [cols], randomValues(cols, 6)) },
      nodes: [
        { op: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] },
        { op: 'Add', inputs: ['xw', 'b'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    const src = tmp(),
      dst = tmp();
    saveModel(big, path.join(src, 'model.onnx'));
    expect(fs.existsSync(path.join(src, 'model.onnx.data'))).toBe(false); // written inline
    const m = loadModel(path.join(src, 'model.onnx'));
    const W = m.graph.initializers.get('W')!;
    expect(isExternal(W.data)).toBe(true);
    expect(W.data).toMatchObject({ path: path.join(src, 'model.onnx'), length: 3 * cols * 4 });
    expect(Array.from(initializerToHost(W, readExternal).data as Float32Array).slice(0, 5)).toEqual(
      Array.from(randomValues(3 * cols, 5).slice(0, 5), Math.fround),
    );
    // saved under the same file name elsewhere: the source is linked under another name, never overwritten
    saveModel(m, path.join(dst, 'model.onnx'));
    const linked = fs.readdirSync(dst).filter((f) => f !== 'model.onnx');
    expect(linked).toHaveLength(1);
    expect(fs.statSync(path.join(dst, linked[0]!)).ino).toBe(fs.statSync(path.join(src, 'model.onnx')).ino);
    expect(fs.statSync(path.join(dst, 'model.onnx')).size).toBeLessThan(1 << 20); // the weight is not in it
    expect(await runY(path.join(dst, 'model.onnx'))).toEqual(await runY(path.join(src, 'model.onnx')));
  });

  test('a missing external data file is a clear error naming the tensor and file', () => {
    const dir = tmp();
    saveModel(linearModel(), path.join(dir, 'model.onnx'), { externalizeAbove: 16 });
    fs.rmSync(path.join(dir, 'model.onnx.data'));
    expect(() => loadModel(path.join(dir, 'model.onnx'))).toThrow(/tensor W: external data file .*model\.onnx\.data does not exist/);
  });

  test('a truncated external data file is detected', () => {
    const dir = tmp();
    saveModel(linearModel(), path.join(dir, 'model.onnx'), { externalizeAbove: 16 });
    fs.truncateSync(path.join(dir, 'model.onnx.data'), 10);
    expect(() => loadModel(path.join(dir, 'model.onnx'))).toThrow(/too short/);
  });

  test.each([
    ['random bytes', Buffer.from(randomValues(64, 1).map((v) => Math.floor((v + 1) * 127)))],
    ['a truncated model', serializeModel(linearModel()).subarray(0, 40)],
    ['an empty file', Buffer.alloc(0)],
  ])('%s is refused with BAD_MODEL', (_, bytes) => {
    let err: unknown;
    try {
      parseModel(bytes, '/tmp', 'x.onnx');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OrtTrainingError);
    expect((err as OrtTrainingError).code).toBe('BAD_MODEL');
    expect((err as Error).message).toMatch(/x\.onnx is not a valid ONNX model/);
  });
});
