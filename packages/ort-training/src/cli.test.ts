/**
 * The `ort-train` binary as users run it: a subprocess on the package's bin, which loads the built package
 * (dist/, built once here with the package's own tsconfig, as `npm test` does before jest).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { saveModel, type OnnxModel } from './model.js';
import { readSafetensors } from './safetensors.js';
import { buildModel } from './testing/gradcheck.js';
import { DataType, fromNumbers } from './tensor.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(pkg, 'dist', 'cli.js');
const bin = path.join(pkg, 'bin', 'ort-train.js');
let tmp: string;

beforeAll(() => {
  const tsc = spawnSync(process.execPath, [path.join(pkg, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(pkg, 'tsconfig.json')], {
    encoding: 'utf8',
  });
  // Type errors elsewhere in the package still emit JavaScript; the CLI tests below judge the result.
  if (!fs.existsSync(cli)) throw new Error(`building the package did not produce ${cli}:\n${tsc.stdout}${tsc.stderr}`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-train-cli-'));
}, 120_000);
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const F = DataType.FLOAT;
/** loss = ReduceSum(x * w + b) over x[B,4] with a symbolic batch; per-row output `y` is not a scalar. */
function model(): OnnxModel {
  const m = buildModel({
    inputs: [{ name: 'x', dims: [2, 4] }],
    constants: { w: fromNumbers(F, [4], [1, 2, 3, 4]), b: fromNumbers(F, [1], [0.5]) },
    nodes: [
      { op: 'Mul', inputs: ['x', 'w'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'b'], outputs: ['y'] },
      { op: 'ReduceSum', inputs: ['y'], outputs: ['loss'], attrs: { keepdims: 0 } },
    ],
    outputs: ['loss', 'y'],
  });
  m.graph.inputs[0]!.shape = ['batch', 4];
  return m;
}

function ortTrainWith(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, DYNASYN_DEBUG: '', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const ortTrain = (...args: string[]) => ortTrainWith({}, ...args);

/** A failure without --debug is one line on stderr (then at most the hint to --debug), no stack trace, exit 1. */
function expectCleanFailure(r: ReturnType<typeof ortTrain>, message: RegExp | string): void {
  expect(r.code).toBe(1);
  const [, ...rest] = r.stderr.trim().split('\n');
  expect(rest.filter((l) => l !== 'run with --debug for stack traces')).toEqual([]);
  expect(r.stderr).toMatch(/^ort-train: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).toMatch(message);
}

test('derive writes a training graph that onnxruntime-node runs, plus the start values', async () => {
  const input = path.join(tmp, 'ok', 'in.onnx');
  saveModel(model(), input);
  const out = path.join(tmp, 'ok', 'out', 'train.onnx');
  const r = ortTrain('derive', input, '--loss', 'loss', '--wrt', 'w,b', '--out', out, '--input-shape', 'x=3,4', '--keep-output', 'y');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);

  const start = readSafetensors(path.join(tmp, 'ok', 'out', 'train.start.safetensors')).tensors;
  expect(Array.from(start.get('w')!.data as Float32Array)).toEqual([1, 2, 3, 4]);
  expect(Array.from(start.get('b')!.data as Float32Array)).toEqual([0.5]);

  const s = await ort.InferenceSession.create(out);
  expect([...s.inputNames].sort()).toEqual(['b', 'w', 'x']);
  expect([...s.outputNames].sort()).toEqual(['b_grad', 'loss', 'w_grad', 'y']);
  const x = Float32Array.from({ length: 12 }, (_, i) => i / 4);
  const res = await s.run({
    x: new ort.Tensor('float32', x, [3, 4]),
    w: new ort.Tensor('float32', start.get('w')!.data as Float32Array, [4]),
    b: new ort.Tensor('float32', start.get('b')!.data as Float32Array, [1]),
  });
  // d/dw_j sum(x w + b) = sum over rows of x[:, j]; d/db = number of elements (12)
  const colSums = [0, 1, 2, 3].map((j) => x.filter((_, i) => i % 4 === j).reduce((a, v) => a + v, 0));
  expect(Array.from(res.w_grad!.data as Float32Array)).toEqual(colSums.map((v) => expect.closeTo(v, 5)));
  expect(Array.from(res.b_grad!.data as Float32Array)).toEqual([12]);
  expect(res.y!.dims).toEqual([3, 4]);
  await s.release();
});

test('a corrupt or truncated model', () => {
  const bad = path.join(tmp, 'garbage.onnx');
  fs.writeFileSync(bad, Buffer.from('this is not a protobuf at all \xff\xff\xff\xff'));
  expectCleanFailure(ortTrain('derive', bad, '--loss', 'loss', '--wrt', 'w', '--out', path.join(tmp, 'x.onnx')), /garbage\.onnx is not a valid ONNX model/);

  const good = path.join(tmp, 'full.onnx');
  saveModel(model(), good);
  const bytes = fs.readFileSync(good);
  const cut = path.join(tmp, 'truncated.onnx');
  fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  expectCleanFailure(ortTrain('derive', cut, '--loss', 'loss', '--wrt', 'w', '--out', path.join(tmp, 'x.onnx')), /truncated\.onnx is not a valid ONNX model/);
  expectCleanFailure(ortTrain('info', path.join(tmp, 'absent.onnx')), /cannot read model .*absent\.onnx: ENOENT/);
});

test('an unknown --wrt tensor, a non-scalar loss, a bad --input-shape', () => {
  const input = path.join(tmp, 'args', 'in.onnx');
  saveModel(model(), input);
  const out = path.join(tmp, 'args', 'out.onnx');
  expectCleanFailure(
    ortTrain('derive', input, '--loss', 'loss', '--wrt', 'w,weight_typo', '--out', out, '--input-shape', 'x=2,4'),
    /--wrt names no initializer or graph input: weight_typo/,
  );
  expectCleanFailure(
    ortTrain('derive', input, '--loss', 'y', '--wrt', 'w', '--out', out, '--input-shape', 'x=2,4'),
    /loss y must be a scalar, but its shape is \[2,4\]/,
  );
  expectCleanFailure(
    ortTrain('derive', input, '--loss', 'loss', '--wrt', 'w', '--out', out, '--input-shape', 'x:2,4'),
    /--input-shape x:2,4: expected NAME=D1,D2/,
  );
  expect(fs.existsSync(out)).toBe(false);
});

test('a missing external data file', () => {
  const input = path.join(tmp, 'ext', 'in.onnx');
  saveModel(model(), input, { externalizeAbove: 0 });
  fs.rmSync(`${input}.data`);
  expectCleanFailure(
    ortTrain('derive', input, '--loss', 'loss', '--wrt', 'w', '--out', path.join(tmp, 'ext', 'out.onnx')),
    /external data file .*in\.onnx\.data does not exist/,
  );
});

test('a failure names its code; --debug (before or after the command) or DYNASYN_DEBUG=1 adds the stack', () => {
  const bad = path.join(tmp, 'debug.onnx');
  fs.writeFileSync(bad, 'not a model');
  const plain = ortTrain('info', bad);
  expect(plain.code).toBe(1);
  expect(plain.stderr).toMatch(/^ort-train: .*debug\.onnx is not a valid ONNX model.* \[BAD_MODEL\]\nrun with --debug for stack traces\n$/);
  for (const r of [ortTrain('--debug', 'info', bad), ortTrain('info', bad, '--debug'), ortTrainWith({ DYNASYN_DEBUG: '1' }, 'info', bad)]) {
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ort-train: OrtTrainingError \[BAD_MODEL\]: .*debug\.onnx is not a valid ONNX model.*\n {2}at /);
    expect(r.stderr).not.toContain('run with --debug');
  }
});

test('an internal error still exits 2, and says what the system said (its code)', () => {
  const input = path.join(tmp, 'internal', 'in.onnx');
  saveModel(model(), input);
  const r = ortTrain('derive', input, '--loss', 'loss', '--wrt', 'w', '--out', path.join(input, 'out.onnx'), '--input-shape', 'x=2,4');
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^ort-train: internal error: E[A-Z]+: .*in\.onnx.* \[E[A-Z]+\]\nrun with --debug for stack traces\n$/);
});

test('the bin without a build says to build first', () => {
  const copy = path.join(tmp, 'unbuilt', 'bin', 'ort-train.js');
  fs.mkdirSync(path.dirname(copy), { recursive: true });
  fs.copyFileSync(bin, copy);
  const r = spawnSync(process.execPath, [copy, '--help'], { encoding: 'utf8' });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/^ort-train: \S*unbuilt\/dist\/cli\.js does not exist: run `npm run build` first\n$/);
});

test('info lists inputs, outputs, the op histogram and the ops it cannot handle', () => {
  const m = model();
  m.graph.addNode({ opType: 'FancyOp', domain: 'com.example', inputs: ['y'], outputs: ['z'] });
  m.graph.addOutput({ name: 'z', dtype: 0 });
  const input = path.join(tmp, 'info.onnx');
  saveModel(m, input);
  const r = ortTrain('info', input, '--json');
  expect(r.code).toBe(0);
  const report = JSON.parse(r.stdout);
  expect(report.inputs).toEqual([{ name: 'x', dtype: 'float', shape: ['batch', 4] }]);
  expect(report.ops).toEqual({ Mul: 1, Add: 1, ReduceSum: 1, 'com.example::FancyOp': 1 });
  expect(report.unsupportedOps).toEqual(['com.example::FancyOp']);
  expect(report.initializers).toEqual({ count: 2, external: 0, bytes: 20 });
  expect(ortTrain('info', input).stdout).toMatch(/unsupported ops: com\.example::FancyOp/);
});

test('processes deriving the same model at once share one cache entry (built dist, as a job runner would)', async () => {
  const input = path.join(tmp, 'race', 'in.onnx');
  saveModel(model(), input, { externalizeAbove: 0 });
  const cacheDir = path.join(tmp, 'race', 'cache');
  const script = `
    import { TrainingSession } from ${JSON.stringify(path.join(pkg, 'dist', 'index.js'))};
    const s = await TrainingSession.create({ model: ${JSON.stringify(input)}, loss: 'loss', trainable: ['w'], inputShapes: { x: [2, 4] }, cacheDir: ${JSON.stringify(cacheDir)} });
    const r = await s.step({ x: { dtype: 1, dims: [2, 4], data: new Float32Array(8).fill(1) } });
    console.log(JSON.stringify({ entry: s.cacheEntry, loss: r.loss }));`;
  const { spawn } = await import('node:child_process');
  const runs = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise<string>((resolve, reject) => {
          const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '',
            err = '';
          p.stdout.on('data', (d) => {
            out += d;
          });
          p.stderr.on('data', (d) => {
            err += d;
          });
          p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(err))));
        }),
    ),
  );
  const results = runs.map((o) => JSON.parse(o) as { entry: string; loss: number });
  expect(new Set(results.map((r) => r.entry)).size).toBe(1);
  expect(results.map((r) => r.loss)).toEqual(Array(4).fill(2 * (1 + 2 + 3 + 4) + 8 * 0.5));
  expect(fs.readdirSync(cacheDir)).toEqual([path.basename(results[0]!.entry)]); // no temporary directory left
});
