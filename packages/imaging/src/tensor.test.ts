import { imageToTensor, maskToTensor, tensorToImage } from './tensor.js';
import { gradient } from './testing/shapes.js';

describe('image tensors', () => {
  it('maps 0..255 to [-1,1] in planar [1,3,H,W] layout', () => {
    const img = { width: 2, height: 1, data: new Uint8Array([0, 255, 51, 255, 0, 102]) };
    const t = imageToTensor(img);
    expect(t.dims).toEqual([1, 3, 1, 2]);
    // planes: R = [0, 255], G = [255, 0], B = [51, 102]
    [-1, 1, 1, -1, -0.6, -0.2].forEach((v, i) => expect(t.data[i]).toBeCloseTo(v, 6));
  });

  it('round trips every 8-bit value exactly', () => {
    const img = gradient(256, 3);
    expect(Buffer.from(tensorToImage(imageToTensor(img)).data).equals(Buffer.from(img.data))).toBe(true);
  });

  it('clamps and rounds decoder output, picks an image of a batch, accepts [3,H,W]', () => {
    const t = { dims: [2, 3, 1, 1], data: new Float32Array([0, 0, 0, 2, -3, Number.NaN]) };
    expect(Array.from(tensorToImage(t, 0).data)).toEqual([128, 128, 128]);
    expect(Array.from(tensorToImage(t, 1).data)).toEqual([255, 0, 0]);
    expect(Array.from(tensorToImage({ dims: [3, 1, 1], data: new Float32Array([1, 0.5, -1]) }).data)).toEqual([255, 191, 0]);
    expect(() => tensorToImage(t, 2)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(() => tensorToImage({ dims: [1, 4, 1, 1], data: new Float32Array(4) })).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });

  it('turns a mask into a [1,1,H,W] 0/1 tensor', () => {
    const t = maskToTensor({ width: 3, height: 1, data: new Uint8Array([0, 1, 1]) });
    expect(t.dims).toEqual([1, 1, 1, 3]);
    expect(Array.from(t.data)).toEqual([0, 1, 1]);
  });
});
