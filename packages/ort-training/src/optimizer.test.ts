import { AdamW } from './optimizer.js';
import { DataType, fromNumbers, type HostTensor } from './tensor.js';

const D = DataType.DOUBLE;
const t = (values: number[]): HostTensor => fromNumbers(D, [values.length], values);
const vals = (x: HostTensor): number[] => Array.from(x.data as Float64Array);

describe('AdamW', () => {
  test('one step matches the hand-computed update (bias correction, decoupled decay)', () => {
    const p = new Map([['w', t([1, -2])]]);
    const opt = new AdamW({ lr: 0.1, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.5 });
    const info = opt.update(p, new Map([['w', t([0.5, -4])]]));
    // t=1: m = 0.1 g, v = 0.01 g^2; m^ = m/0.1 = g, v^ = v/0.01 = g^2, so the Adam step is lr * g/(|g|+eps)
    // = ±0.1; decay multiplies p by 1 - 0.1*0.5 = 0.95 first.
    const expected = [1 * 0.95 - (0.1 * 0.5) / (0.5 + 1e-8), -2 * 0.95 - (0.1 * -4) / (4 + 1e-8)];
    expect(vals(p.get('w')!)).toEqual(expected.map((e) => expect.closeTo(e, 14)));
    expect(info).toEqual({ step: 1, lr: 0.1, gradNorm: Math.hypot(0.5, 4), clipScale: 1, skipped: false });
    // second step, by hand: m = 0.9 m1 + 0.1 g2, v = 0.99 v1 + 0.01 g2^2, corrections 1-0.9^2, 1-0.99^2
    const g2 = [1, 1];
    const m = [0.9 * 0.05 + 0.1, 0.9 * -0.4 + 0.1];
    const v = [0.99 * 0.0025 + 0.01, 0.99 * 0.16 + 0.01];
    const p1 = vals(p.get('w')!);
    opt.update(p, new Map([['w', t(g2)]]));
    const p2 = p1.map((x, i) => x * 0.95 - (0.1 * (m[i]! / (1 - 0.81))) / (Math.sqrt(v[i]! / (1 - 0.9801)) + 1e-8));
    expect(vals(p.get('w')!)).toEqual(p2.map((e) => expect.closeTo(e, 14)));
    expect(opt.state().tensors.get('w')!.step).toBe(2);
  });

  test('global-norm clipping scales all gradients together and reports the pre-clip norm', () => {
    // With clipping the gradient is g * c; Adam's first step is invariant to that scale, so compare the
    // moments instead: m = (1-b1) g c.
    const opt = new AdamW({ lr: 0.01, maxGradNorm: 1, weightDecay: 0 });
    const p = new Map([
      ['a', t([0, 0])],
      ['b', t([0])],
    ]);
    const info = opt.update(
      p,
      new Map([
        ['a', t([3, 0])],
        ['b', t([4])],
      ]),
    );
    expect(info.gradNorm).toBe(5);
    expect(info.clipScale).toBeCloseTo(1 / (5 + 1e-6), 15);
    const s = opt.state();
    expect(Array.from(s.tensors.get('a')!.m)).toEqual([expect.closeTo((0.1 * 3) / 5, 6), 0]);
    expect(Array.from(s.tensors.get('b')!.m)).toEqual([expect.closeTo((0.1 * 4) / 5, 6)]);
    // below the threshold nothing is scaled
    const small = opt.update(
      p,
      new Map([
        ['a', t([0.3, 0])],
        ['b', t([0.4])],
      ]),
    );
    expect(small).toMatchObject({ gradNorm: expect.closeTo(0.5, 15), clipScale: 1 });
  });

  test('a non-finite gradient skips the update and leaves all state untouched', () => {
    const opt = new AdamW({ lr: 0.1 });
    const p = new Map([['w', t([1, 2])]]);
    opt.update(p, new Map([['w', t([1, 1])]]));
    const before = [vals(p.get('w')!), opt.state()];
    const info = opt.update(p, new Map([['w', t([NaN, 1])]]));
    expect(info).toMatchObject({ skipped: true, step: 1 });
    expect([vals(p.get('w')!), opt.state()]).toEqual(before);
  });

  test('lr schedule sees the 1-based update number; tensors keep their own step counts', () => {
    const seen: number[] = [];
    const opt = new AdamW({
      lr: (s) => {
        seen.push(s);
        return 0.1 / s;
      },
    });
    const p = new Map([
      ['a', t([1])],
      ['b', t([1])],
    ]);
    opt.update(
      p,
      new Map([
        ['a', t([1])],
        ['b', t([1])],
      ]),
    );
    opt.update(p, new Map([['a', t([1])]]));
    expect(seen).toEqual([1, 2]);
    expect(opt.state().tensors.get('a')!.step).toBe(2);
    expect(opt.state().tensors.get('b')!.step).toBe(1);
  });

  test('float32 parameters are updated in place; state()/loadState() copy', () => {
    const w = fromNumbers(DataType.FLOAT, [2], [1, 1]);
    const opt = new AdamW({ lr: 0.5, weightDecay: 0 });
    opt.update(new Map([['w', w]]), new Map([['w', fromNumbers(DataType.FLOAT, [2], [1, -1])]]));
    expect(Array.from(w.data as Float32Array)).toEqual([expect.closeTo(0.5, 6), expect.closeTo(1.5, 6)]);
    const s = opt.state();
    s.tensors.get('w')!.m[0] = 123;
    expect(opt.state().tensors.get('w')!.m[0]).not.toBe(123);
    const other = new AdamW({ lr: 0.5 });
    other.loadState(opt.state());
    expect(other.state()).toEqual(opt.state());
  });

  test('mismatched or integer tensors are refused', () => {
    const opt = new AdamW({ lr: 0.1 });
    expect(() => opt.update(new Map([['w', t([1])]]), new Map([['w', t([1, 2])]]))).toThrow('gradient of w is double[2], the tensor is double[1]');
    expect(() => opt.update(new Map(), new Map([['q', t([1])]]))).toThrow('gradient for q');
    const i = fromNumbers(DataType.INT32, [1], [1]);
    expect(() => opt.update(new Map([['n', i]]), new Map([['n', i]]))).toThrow('AdamW updates float and double tensors; n is int32');
    expect(() => new AdamW({ lr: 0.1, betas: [1, 0.9] })).toThrow('betas');
  });
});
