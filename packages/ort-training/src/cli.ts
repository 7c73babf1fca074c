#!/usr/bin/env node
/**
 * `ort-train`: derive training graphs from the command line, and inspect what a model needs.
 *
 *   ort-train derive IN.onnx --loss NAME --wrt T1,T2 --out OUT.onnx [--input-shape x=1,4,64,64] [--keep-output N]
 *   ort-train info IN.onnx [--json]
 *
 * In OUT each --wrt initializer is a plain graph input; its value is written beside OUT as the start value
 * (`OUT.start.safetensors`). Keeping it as an initializer of the same name (ONNX's "default value" form) was
 * tried and rejected: onnxruntime-node 1.30 lists only non-initializer inputs and silently IGNORES a feed
 * for such a tensor, so a training loop would keep getting the gradients at the start value.
 * A failure exits 1 (2 for an internal error) after its message and every cause (`caused by:` lines) on
 * stderr; `--debug` (anywhere) or DYNASYN_DEBUG=1 adds whole messages and stacks.
 */
import { Command } from 'commander';
import { deriveGradientGraph } from './autodiff.js';
import { debugFromEnv, formatFailure } from '@dynasyn/domain';
import { OrtTrainingError } from './errors.js';
import { initializerToHost, isExternal } from './graph.js';
import { defaultOpset, loadModel, readExternal, saveModel } from './model.js';
import { findOp } from './ops/registry.js';
import { packageVersion } from './cache.js';
import { writeSafetensors } from './safetensors.js';
import { dataTypeName, type HostTensor } from './tensor.js';

const collect = (v: string, acc: string[]): string[] => [...acc, v];

function parseInputShapes(specs: string[]): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const s of specs) {
    const m = /^([^=]+)=(\d+(?:,\d+)*)$/.exec(s);
    if (!m) throw new OrtTrainingError('BAD_ARGUMENT', `--input-shape ${s}: expected NAME=D1,D2,... (e.g. latents=1,4,64,64)`);
    shapes[m[1]!] = m[2]!.split(',').map(Number);
  }
  return shapes;
}

function derive(input: string, o: { loss: string; wrt: string; out: string; inputShape: string[]; keepOutput: string[]; startValues?: string }): void {
  const model = loadModel(input);
  const wrt = o.wrt
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!wrt.length) throw new OrtTrainingError('BAD_ARGUMENT', '--wrt names no tensor');
  const { model: training, gradientOutputs } = deriveGradientGraph(model, {
    loss: o.loss,
    wrt,
    inputShapes: parseInputShapes(o.inputShape),
    keepOutputs: o.keepOutput,
  });
  saveModel(training, o.out);
  const grads = wrt.map((t) => `${t} -> ${gradientOutputs[t]}`).join(', ');
  process.stdout.write(`wrote ${o.out}: ${training.graph.nodes.length} nodes; loss ${o.loss}; gradients ${grads}\n`);
  const start = new Map<string, HostTensor>();
  for (const t of wrt) {
    const init = model.graph.initializers.get(t);
    if (init) start.set(t, initializerToHost(init, readExternal));
  }
  if (start.size) {
    const file = o.startValues ?? `${o.out.replace(/\.onnx$/i, '')}.start.safetensors`;
    writeSafetensors(file, start);
    process.stdout.write(`wrote ${file}: start values of ${[...start.keys()].join(', ')}\n`);
  }
}

function info(input: string, o: { json?: boolean }): void {
  const model = loadModel(input);
  const g = model.graph;
  const inits = [...g.initializers.values()];
  const histogram = new Map<string, number>();
  for (const n of g.nodes) {
    const key = n.domain ? `${n.domain}::${n.opType}` : n.opType;
    histogram.set(key, (histogram.get(key) ?? 0) + 1);
  }
  const unsupported: string[] = [],
    noGradient: string[] = [];
  for (const n of g.nodes) {
    const def = findOp(n.domain, n.opType);
    const key = n.domain ? `${n.domain}::${n.opType}` : n.opType;
    if (!def) {
      if (!unsupported.includes(key)) unsupported.push(key);
    } else if (!def.gradient && !def.nonDifferentiable && !noGradient.includes(key)) noGradient.push(key);
  }
  const initNames = new Set(g.initializers.keys());
  const report = {
    opset: defaultOpset(model),
    inputs: g.inputs.filter((v) => !initNames.has(v.name)).map((v) => ({ name: v.name, dtype: dataTypeName(v.dtype), shape: v.shape ?? null })),
    outputs: g.outputs.map((v) => ({ name: v.name, dtype: dataTypeName(v.dtype), shape: v.shape ?? null })),
    initializers: {
      count: inits.length,
      external: inits.filter((i) => isExternal(i.data)).length,
      bytes: inits.reduce((a, i) => a + (isExternal(i.data) ? i.data.length : i.data.byteLength), 0),
    },
    ops: Object.fromEntries([...histogram].sort((a, b) => b[1] - a[1])),
    unsupportedOps: unsupported.sort(),
    opsWithoutGradient: noGradient.sort(),
  };
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const shape = (s: unknown[] | null) => (s ? `[${s.map((d) => d ?? '?').join(',')}]` : '[?]');
  const lines = [
    `opset ${report.opset}`,
    'inputs:',
    ...report.inputs.map((v) => `  ${v.name} ${v.dtype}${shape(v.shape)}`),
    'outputs:',
    ...report.outputs.map((v) => `  ${v.name} ${v.dtype}${shape(v.shape)}`),
    `initializers: ${report.initializers.count} (${report.initializers.external} external), ${report.initializers.bytes} bytes`,
    'ops:',
    ...Object.entries(report.ops).map(([k, n]) => `  ${k} ${n}`),
    `unsupported ops: ${report.unsupportedOps.join(', ') || 'none'}`,
    `ops without a gradient rule: ${report.opsWithoutGradient.join(', ') || 'none'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Run an action; report a failure with its causes (stacks with --debug). */
const guarded =
  <A extends unknown[]>(action: (...args: A) => void) =>
  (...args: A): void => {
    try {
      action(...args);
    } catch (e) {
      const debug = program.opts<{ debug?: boolean }>().debug === true || debugFromEnv(process.env);
      const known = e instanceof OrtTrainingError;
      // A bad argument says all in its message: no hint to stacks there.
      const hint = !(known && e.code === 'BAD_ARGUMENT' && e.cause === undefined);
      process.stderr.write(formatFailure(e, { prefix: known ? 'ort-train' : 'ort-train: internal error', debug, hint }));
      process.exitCode = known ? 1 : 2;
    }
  };

// V8 keeps 10 frames, too few to reach from deep autodiff code up to the command's action.
if (process.argv.includes('--debug') || debugFromEnv(process.env)) Error.stackTraceLimit = 100;

const program = new Command('ort-train')
  .description('Reverse-mode autodiff over ONNX graphs: training graphs that onnxruntime runs as-is')
  .version(packageVersion)
  .configureHelp({ showGlobalOptions: true })
  // A program option: commander takes it before or after the subcommand's name and arguments.
  .option('--debug', 'on failure, print every cause whole with its stack (also DYNASYN_DEBUG=1)');

program
  .command('derive')
  .description('write a graph computing the loss and its gradients with respect to chosen tensors')
  .argument('<in>', 'the model (.onnx; external data beside it)')
  .requiredOption('--loss <name>', 'scalar loss tensor')
  .requiredOption('--wrt <names>', 'comma-separated initializers or graph inputs to differentiate with respect to')
  .requiredOption('--out <file>', 'where to write the training graph (external data is linked beside it)')
  .option('--input-shape <name=dims>', 'concrete shape of an input with symbolic dimensions (repeatable)', collect, [])
  .option('--keep-output <name>', 'further tensor to output (repeatable)', collect, [])
  .option('--start-values <file>', "where to write the --wrt initializers' values (default OUT.start.safetensors)")
  .action(guarded(derive));

program
  .command('info')
  .description('inputs, outputs, initializers and op histogram of a model, with the ops ort-training cannot differentiate')
  .argument('<in>', 'the model (.onnx)')
  .option('--json', 'machine-readable output')
  .action(guarded(info));

program.parse();
