/**
 * A stand-in world for tests and smoke runs: one or two flat-coloured shapes (circle, square, triangle) on a
 * flat background, captioned "a red circle and a blue square on a white background". Rasterised here.
 */
import type { Example, ExampleSource } from './data.js';
import { Rng } from './rng.js';

const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [240, 210, 40],
  white: [245, 245, 245],
  black: [30, 30, 30],
};
const SHAPES = ['circle', 'square', 'triangle'] as const;

function inside(shape: (typeof SHAPES)[number], dx: number, dy: number, r: number): boolean {
  if (shape === 'circle') return dx * dx + dy * dy <= r * r;
  if (shape === 'square') return Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85;
  return dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= ((dy + r) / (1.8 * r)) * r; // apex up
}

export function syntheticShapesSource(size: number): ExampleSource {
  const draw = (seed: number, index: number): { example: Example } => {
    const rng = new Rng(`synthetic/${seed}/${index}`);
    const names = Object.keys(COLOURS);
    const bg = rng.pick(names);
    const count = 1 + rng.int(2);
    const rgb = new Float32Array(3 * size * size);
    const subjects = new Uint8Array(size * size);
    const paint = (c: [number, number, number], test: (x: number, y: number) => boolean, subject: boolean) => {
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++)
          if (test(x, y)) {
            for (let k = 0; k < 3; k++) rgb[k * size * size + y * size + x] = c[k]! / 127.5 - 1;
            subjects[y * size + x] = subject ? 1 : 0;
          }
    };
    paint(COLOURS[bg]!, () => true, false);
    const parts: string[] = [];
    for (let i = 0; i < count; i++) {
      const colour = rng.pick(names.filter((n) => n !== bg));
      const shape = rng.pick(SHAPES);
      const r = size * (0.15 + 0.1 * rng.uniform());
      const cx = (count === 1 ? 0.5 : 0.28 + 0.44 * i) * size + (rng.uniform() - 0.5) * size * 0.1;
      const cy = size * (0.35 + 0.3 * rng.uniform());
      paint(COLOURS[colour]!, (x, y) => inside(shape, x + 0.5 - cx, y + 0.5 - cy, r), true);
      parts.push(`a ${colour} ${shape}`);
    }
    return { example: { rgb, caption: `${parts.join(' and ')} on a ${bg} background`, subjects } };
  };
  return {
    name: 'synthetic',
    size,
    description: `synthetic flat shapes (${SHAPES.join(', ')}) in ${Object.keys(COLOURS).length} colours, ${size} px`,
    example: async (seed, index) => draw(seed, index).example,
    captions: async (seed, count) => Array.from({ length: count }, (_, i) => draw(seed, i).example.caption),
  };
}
