/** Sample prompts, categories, the prompts file, class prompts; adapters folded into weights equal the adapter's output. */
import { DataType, Graph, type OnnxModel } from '@dynasyn/ort-training';
import { InputError } from './input-error.js';
import { mergeAdapters } from './merge-adapters.js';
import { categorizePrompt, defaultSamplePrompts, parsePromptFile, toClassPrompt } from './sample.js';

test('default prompts cycle categories and name every subject', () => {
  const p = defaultSamplePrompts(2, 6);
  expect(p.map((x) => x.category)).toEqual(['plain', 'interaction', 'action', 'plain', 'interaction', 'action']);
  expect(p[0]!.prompt).toBe('a photo of <asset0> and <asset1>');
  const named = new Set(p.flatMap((x) => x.prompt.match(/<asset\d>/g) ?? []));
  expect([...named].sort()).toEqual(['<asset0>', '<asset1>']);
  expect(defaultSamplePrompts(1, 3).every((x) => x.category !== 'interaction' && !x.prompt.includes('<asset1>'))).toBe(true);
  for (const x of p) expect(categorizePrompt(x.prompt)).toBe(x.category);
});

test('the prompts file: comments, category prefixes, inferred categories, unknown placeholders refused', () => {
  const p = parsePromptFile('# mine\n\naction: <asset0> jumping\n<asset0> hugging <asset1>\na photo of <asset1>\n', 2);
  expect(p).toEqual([
    { prompt: '<asset0> jumping', category: 'action' },
    { prompt: '<asset0> hugging <asset1>', category: 'interaction' },
    { prompt: 'a photo of <asset1>', category: 'plain' },
  ]);
  expect(() => parsePromptFile('a photo of <asset2>', 2)).toThrow(/prompts line 1: <asset2> names no subject \(there are 2/);
  expect(() => parsePromptFile('# nothing\n', 2)).toThrow(InputError);
  expect(toClassPrompt('<asset0> next to <asset1>', ['ball', 'box'])).toBe('ball next to box');
});

test('a merged adapter gives x W + scale x A B', () => {
  const [rows, cols, rank] = [3, 4, 2];
  const w = Float32Array.from({ length: rows * cols }, (_, i) => i * 0.1);
  const a = Float32Array.from({ length: rows * rank }, (_, i) => 1 - i * 0.3);
  const b = Float32Array.from({ length: rank * cols }, (_, i) => i * 0.05 - 0.2);
  const graph = new Graph({ initializers: new Map([['W', { name: 'W', dtype: DataType.FLOAT, dims: [rows, cols], data: new Uint8Array(w.slice().buffer) }]]) });
  const model = { graph } as unknown as OnnxModel;
  const adapters = new Map([
    ['A', { dtype: DataType.FLOAT, dims: [rows, rank], data: a }],
    ['B', { dtype: DataType.FLOAT, dims: [rank, cols], data: b }],
  ]);
  expect(mergeAdapters(model, 'unet', { adapters, adapterSpec: [{ model: 'unet', weight: 'W', a: 'A', b: 'B', scale: 0.5 }] })).toBe(1);
  const init = graph.initializers.get('W')!;
  const merged = new Float32Array((init.data as Uint8Array).slice().buffer);
  const x = [0.3, -1, 2];
  for (let j = 0; j < cols; j++) {
    let expected = 0;
    for (let i = 0; i < rows; i++) {
      let ab = 0;
      for (let k = 0; k < rank; k++) ab += a[i * rank + k]! * b[k * cols + j]!;
      expected += x[i]! * (w[i * cols + j]! + 0.5 * ab);
    }
    const got = x.reduce((s, xi, i) => s + xi * merged[i * cols + j]!, 0);
    expect(got).toBeCloseTo(expected, 5);
  }
  expect(() => mergeAdapters(model, 'unet', { adapters, adapterSpec: [{ model: 'unet', weight: 'nope', a: 'A', b: 'B', scale: 1 }] })).toThrow(
    /weight nope is not an initializer/,
  );
  expect(mergeAdapters(model, 'text_encoder', { adapters, adapterSpec: [{ model: 'unet', weight: 'W', a: 'A', b: 'B', scale: 1 }] })).toBe(0);
});
