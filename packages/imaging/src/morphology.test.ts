import { area, boundingBox } from './mask.js';
import { connectedComponents, dilate, erode, fillHoles, keepLargestComponent, removeSmallComponents, squaredDistanceToSet } from './morphology.js';
import { disc, maskFrom, maskRows } from './testing/shapes.js';
import type { Mask } from './types.js';

const dot = (w: number, h: number, x: number, y: number): Mask => {
  const data = new Uint8Array(w * h);
  data[y * w + x] = 1;
  return { width: w, height: h, data };
};

describe('distance transform', () => {
  it('equals brute-force squared distances', () => {
    const m = maskFrom(['#......', '.......', '....#..', '.......', '......#']);
    const d = squaredDistanceToSet(m);
    const set = [...m.data.keys()].filter((i) => m.data[i]);
    for (let i = 0; i < d.length; i++) {
      const x = i % 7,
        y = Math.floor(i / 7);
      expect(d[i]).toBe(Math.min(...set.map((j) => (x - (j % 7)) ** 2 + (y - Math.floor(j / 7)) ** 2)));
    }
  });
});

describe('dilate / erode', () => {
  it('a square of radius r grows a dot to a (2r+1)^2 block', () => {
    const d = dilate(dot(9, 9, 4, 4), 2, { shape: 'square' });
    expect(area(d)).toBe(25);
    expect(boundingBox(d)).toEqual({ x: 2, y: 2, width: 5, height: 5 });
  });

  it('a disk of radius r grows a dot to the lattice points within r', () => {
    const d = dilate(dot(21, 21, 10, 10), 5);
    expect(maskRows(d)).toEqual(maskRows(disc(21, 21, 10, 10, 5)));
    expect(area(d)).toBe(81); // lattice points in a radius-5 circle
  });

  it('dilation is clipped at the border; erosion does not eat from the border', () => {
    expect(boundingBox(dilate(dot(5, 5, 0, 0), 1, { shape: 'square' }))).toEqual({ x: 0, y: 0, width: 2, height: 2 });
    const full = maskFrom(['#####', '#####', '#####']);
    expect(area(erode(full, 1))).toBe(15);
  });

  it('erode undoes dilate on a convex block, and removes a thin line', () => {
    const block = maskFrom(['........', '........', '..###...', '..###...', '..###...', '........', '........']);
    expect(maskRows(erode(dilate(block, 1, { shape: 'square' }), 1, { shape: 'square' }))).toEqual(maskRows(block));
    expect(maskRows(erode(block, 1, { shape: 'square' }))).toEqual(['........', '........', '........', '...#....', '........', '........', '........']);
    expect(area(erode(maskFrom(['.....', '#####', '.....']), 1))).toBe(0);
  });

  it('radius 0 is the identity and a negative radius is refused', () => {
    const m = maskFrom(['#.', '.#']);
    expect(maskRows(dilate(m, 0))).toEqual(maskRows(m));
    expect(() => dilate(m, -1)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });
});

describe('connected components', () => {
  const m = maskFrom(['##....#', '##...#.', '......#', '.###...', '.#.#..#']);

  it('labels regions with sizes and boxes, by connectivity', () => {
    const c8 = connectedComponents(m, 8);
    expect(c8.components.map((c) => c.area)).toEqual([4, 3, 5, 1]);
    expect(c8.components[1]!.box).toEqual({ x: 5, y: 0, width: 2, height: 3 });
    expect(c8.labels[0]).toBe(1);
    expect(c8.labels[6]).toBe(2);
    const c4 = connectedComponents(m, 4);
    expect(c4.components.map((c) => c.area)).toEqual([4, 1, 1, 1, 5, 1]);
  });

  it('keeps the largest and removes small ones', () => {
    expect(area(keepLargestComponent(m))).toBe(5);
    expect(boundingBox(keepLargestComponent(m))).toEqual({ x: 1, y: 3, width: 3, height: 2 });
    expect(area(removeSmallComponents(m, 3))).toBe(12);
    expect(area(removeSmallComponents(m, 2, 4))).toBe(9);
    expect(area(keepLargestComponent(maskFrom(['...'])))).toBe(0);
  });

  it('fills holes but not bays open to the border', () => {
    const ring = maskFrom(['#####..', '#...#..', '#.#.#..', '#####..', '.......', '###....', '#.#....']);
    expect(maskRows(fillHoles(ring))).toEqual(['#####..', '#####..', '#####..', '#####..', '.......', '###....', '#.#....']);
  });
});
