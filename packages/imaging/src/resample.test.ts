import { resizeMap } from './resample.js';

describe('resizeMap', () => {
  // reference values: torch.nn.functional.interpolate(mode='bilinear', align_corners=False), torch 1.13
  it('matches PyTorch bilinear upsampling', () => {
    expect(Array.from(resizeMap([0, 1, 2, 3], 2, 2, 4, 4))).toEqual([0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
    const torch = [0.0, 0.4, 1.0, 1.6, 2.0, 1.5, 1.9, 2.5, 3.1, 3.5, 3.0, 3.4, 4.0, 4.6, 5.0];
    resizeMap([0, 1, 2, 3, 4, 5], 3, 2, 5, 3).forEach((v, i) => expect(v).toBeCloseTo(torch[i]!, 5));
  });

  it('refuses a map whose length does not match its size', () => {
    expect(() => resizeMap([1, 2, 3], 2, 2, 4, 4)).toThrow(expect.objectContaining({ code: 'SIZE_MISMATCH' }));
  });
});
