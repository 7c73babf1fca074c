import { Graph } from './graph.js';
import { DataType, fromNumbers } from './tensor.js';
import { OrtTrainingError } from './errors.js';

function chain(): Graph {
  const g = new Graph();
  g.addInput({ name: 'x', dtype: DataType.FLOAT, shape: [2] });
  // deliberately out of order: c uses b before b's producer appears
  g.addNode({ opType: 'Relu', inputs: ['b'], outputs: ['c'], name: 'n2' });
  g.addNode({ opType: 'Neg', inputs: ['x'], outputs: ['b'], name: 'n1' });
  g.addNode({ opType: 'Exp', inputs: ['x'], outputs: ['dead'], name: 'unused' });
  g.addConstant('k', fromNumbers(DataType.FLOAT, [2], [1, 2]));
  g.addNode({ opType: 'Add', inputs: ['c', 'k'], outputs: ['y'], name: 'n3' });
  g.addOutput({ name: 'y', dtype: DataType.FLOAT });
  return g;
}

describe('graph editing', () => {
  test('topological order puts producers first', () => {
    const order = chain()
      .topologicalOrder()
      .map((n) => n.name);
    expect(order.indexOf('n1')).toBeLessThan(order.indexOf('n2'));
    expect(order.indexOf('n2')).toBeLessThan(order.indexOf('n3'));
  });

  test('dead nodes and unread initializers are removed', () => {
    const g = chain();
    g.addConstant('orphan', fromNumbers(DataType.FLOAT, [1], [0]));
    g.removeDeadNodes();
    expect(g.nodes.map((n) => n.name)).toEqual(['n1', 'n2', 'n3']);
    expect([...g.initializers.keys()]).toEqual(['k']);
  });

  test('a cycle is reported', () => {
    const g = new Graph();
    g.addNode({ opType: 'Neg', inputs: ['b'], outputs: ['a'], name: 'p' });
    g.addNode({ opType: 'Neg', inputs: ['a'], outputs: ['b'], name: 'q' });
    expect(() => g.topologicalOrder()).toThrow(/cycle/);
  });

  test('subgraph extraction keeps only what computes the outputs', () => {
    const sub = chain().extractSubgraph(['b'], ['y']);
    expect(sub.nodes.map((n) => n.name)).toEqual(['n2', 'n3']);
    expect(sub.inputs.map((v) => v.name)).toEqual(['b']);
    expect([...sub.initializers.keys()]).toEqual(['k']);
    expect(() => chain().extractSubgraph([], ['nope'])).toThrow(OrtTrainingError);
  });

  test('promoting an initializer to an input keeps its value and shape', () => {
    const g = chain();
    const init = g.promoteInitializerToInput('k');
    expect(init.dims).toEqual([2]);
    expect(g.inputs.find((v) => v.name === 'k')?.shape).toEqual([2]);
    expect(g.initializers.has('k')).toBe(false);
  });

  test('unique names never collide', () => {
    const g = chain();
    const a = g.uniqueName('y'),
      b = g.uniqueName('y');
    expect(new Set(['y', a, b]).size).toBe(3);
  });

  test('replaceNode keeps the position', () => {
    const g = chain();
    const n2 = g.nodes[0]!;
    g.replaceNode(n2, [{ name: 'n2b', opType: 'Sigmoid', domain: '', inputs: ['b'], outputs: ['c'], attributes: [] }]);
    expect(g.nodes[0]!.name).toBe('n2b');
  });
});
