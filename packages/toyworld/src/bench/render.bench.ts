/** Render speed on one core: `npm run bench -w @dynasyn/toyworld`. Prints scenes per second per size. */
import { renderScene } from '../render.js';
import { datasetSceneSpec } from '../sample.js';

for (const [size, count] of [
  [64, 3000],
  [128, 1000],
] as const) {
  const specs = Array.from({ length: count }, (_, i) => datasetSceneSpec('bench', i));
  for (let i = 0; i < 200; i++) renderScene(specs[i]!, { size }); // warm-up
  const started = performance.now();
  for (const spec of specs) renderScene(spec, { size });
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`toyworld renderScene ${size}x${size}: ${(count / seconds).toFixed(0)} scenes/s (${count} scenes, ${seconds.toFixed(2)} s)\n`);
}
