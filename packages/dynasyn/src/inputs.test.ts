/** Input validation: every way a user's image/masks/class words can be wrong gives its own clear error. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClipTokenizer, writeTinyTokenizer } from '@dynasyn/diffusion';
import { area, encodePng, maskToImage } from '@dynasyn/imaging';
import { drawExampleInput, createExampleInput } from './example/example-input.js';
import { InputError, type InputErrorCode } from './input-error.js';
import { checkPrompt, loadInput, readInputFiles, validatePersonalizationInput, type ClassWordTokenizer, type InputSource } from './inputs.js';
import type { Mask } from './types.js';

let dir: string;
let tokenizer: ClipTokenizer;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-inputs-'));
  writeTinyTokenizer(path.join(dir, 'tok'));
  tokenizer = ClipTokenizer.fromDir(path.join(dir, 'tok'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const ex = drawExampleInput(); // 256x224, ball + box
const source = (over: Partial<InputSource> = {}): InputSource => ({
  image: ex.image,
  subjects: [
    { mask: ex.masks[0]!, classWord: 'ball' },
    { mask: ex.masks[1]!, classWord: 'box' },
  ],
  ...over,
});
const rect = (w: number, h: number, x0: number, y0: number, x1: number, y1: number): Mask => {
  const data = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * w + x] = 1;
  return { width: w, height: h, data };
};

async function rejects(p: Promise<unknown>, code: InputErrorCode, message: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(InputError);
  expect((e as InputError).code).toBe(code);
  expect((e as InputError).message).toMatch(message);
}

test('a valid input is fitted to the backbone size, masks following the image', async () => {
  const input = await loadInput(source(), 128, { tokenizer });
  expect([input.image.width, input.image.height]).toEqual([128, 128]);
  expect(input.subjects.map((s) => [s.mask.width, s.mask.height])).toEqual([
    [128, 128],
    [128, 128],
  ]);
  // cover fit of 256x224 -> 128: scale 128/224, so areas shrink by that factor squared (nearest: +-edge pixels)
  const scale = (128 / 224) ** 2;
  input.subjects.forEach((s, i) => {
    const expected = area(ex.masks[i]!) * scale;
    expect(Math.abs(area(s.mask) - expected) / expected).toBeLessThan(0.08);
  });
  // the ball is red where its mask is
  const ball = input.subjects[0]!.mask;
  let red = 0,
    n = 0;
  for (let p = 0; p < ball.data.length; p++)
    if (ball.data[p]) {
      n++;
      if (input.image.data[p * 3]! > input.image.data[p * 3 + 2]! + 40) red++;
    }
  expect(red / n).toBeGreaterThan(0.8);
});

test('encoded files are read from disk; 0/255 masks count as binary', async () => {
  const files = await createExampleInput(path.join(dir, 'example'));
  const input = await readInputFiles({ ...files, nounPhrases: ['red ball', 'blue box'] }, 128, { tokenizer });
  expect(input.subjects.map((s) => [s.classWord, s.nounPhrase])).toEqual([
    ['ball', 'red ball'],
    ['box', 'blue box'],
  ]);
  const m255 = { ...ex.masks[0]!, data: ex.masks[0]!.data.map((v) => v * 255) };
  const fromDecoded = await loadInput(source({ subjects: [{ mask: m255, classWord: 'ball' }] }), 128);
  expect(area(fromDecoded.subjects[0]!.mask)).toBeGreaterThan(0);
});

test('an unreadable image or mask names its file', async () => {
  await rejects(
    readInputFiles({ image: path.join(dir, 'nope.png'), masks: [], classWords: [] }, 128),
    'UNREADABLE_IMAGE',
    /cannot read image .*nope\.png: no such file/,
  );
  fs.writeFileSync(path.join(dir, 'junk.png'), 'not an image');
  await rejects(
    readInputFiles({ image: path.join(dir, 'junk.png'), masks: [path.join(dir, 'junk.png')], classWords: ['ball'] }, 128),
    'UNREADABLE_IMAGE',
    /cannot decode image .*junk\.png/,
  );
  const img = path.join(dir, 'img.png');
  fs.writeFileSync(img, await encodePng(ex.image));
  await rejects(readInputFiles({ image: img, masks: [path.join(dir, 'junk.png')], classWords: ['ball'] }, 128), 'UNREADABLE_MASK', /cannot decode .*junk\.png/);
  await rejects(readInputFiles({ image: img, masks: [path.join(dir, 'm.png')], classWords: ['ball', 'box'] }, 128), 'BAD_OPTION', /1 masks and 2 class words/);
});

test('a mask of another size than the image is refused with both sizes', async () => {
  const small = rect(128, 112, 10, 10, 50, 50);
  await rejects(
    loadInput(source({ subjects: [{ mask: small, classWord: 'ball', name: 'm0.png' }] }), 128),
    'MASK_SIZE_MISMATCH',
    /m0\.png \(ball\) is 128x112 but image is 256x224/,
  );
});

test('an empty mask, and a mask covering the whole image, are refused', async () => {
  const empty = rect(256, 224, 0, 0, 0, 0);
  await rejects(
    loadInput(
      source({
        subjects: [
          { mask: ex.masks[0]!, classWord: 'ball' },
          { mask: empty, classWord: 'box' },
        ],
      }),
      128,
    ),
    'EMPTY_MASK',
    /mask 1 \(box\) is empty/,
  );
  const all = rect(256, 224, 0, 0, 256, 224);
  await rejects(loadInput(source({ subjects: [{ mask: all, classWord: 'ball' }] }), 128), 'MASK_COVERS_IMAGE', /covers 100\.0% of image/);
  const most = rect(256, 224, 1, 0, 256, 224); // 99.6%
  await rejects(loadInput(source({ subjects: [{ mask: most, classWord: 'ball' }] }), 128), 'MASK_COVERS_IMAGE', /covers 99\.6%/);
  // a big subject that leaves background is fine
  await expect(loadInput(source({ subjects: [{ mask: rect(256, 224, 20, 20, 236, 204), classWord: 'ball' }] }), 128)).resolves.toBeDefined();
});

test('a mask that falls outside the centre crop is reported after fitting', async () => {
  const wide = { width: 400, height: 100, data: new Uint8Array(400 * 100 * 3).fill(128) };
  const left = rect(400, 100, 0, 10, 40, 90);
  await rejects(
    loadInput({ image: wide, imageName: 'wide.png', subjects: [{ mask: left, classWord: 'ball', name: 'left.png' }] }, 128),
    'EMPTY_MASK',
    /left\.png \(ball\) lies outside the centre square crop of wide\.png/,
  );
});

test('masks overlapping almost completely are refused; partly overlapping ones are fine', async () => {
  const a = rect(256, 224, 20, 20, 120, 120);
  const b = rect(256, 224, 22, 20, 120, 120);
  await rejects(
    loadInput(
      source({
        subjects: [
          { mask: a, classWord: 'ball' },
          { mask: b, classWord: 'box' },
        ],
      }),
      128,
    ),
    'MASKS_OVERLAP',
    /mask 0 \(ball\) and mask 1 \(box\) overlap almost completely \(IoU 0\.98/,
  );
  const c = rect(256, 224, 70, 20, 170, 120);
  await expect(
    loadInput(
      source({
        subjects: [
          { mask: a, classWord: 'ball' },
          { mask: c, classWord: 'box' },
        ],
      }),
      128,
    ),
  ).resolves.toBeDefined();
});

test('more subjects than placeholder slots, or none, are refused', async () => {
  await rejects(loadInput(source(), 128, { maxSubjects: 1 }), 'SUBJECT_COUNT', /2 masks but only 1 placeholder slots/);
  await rejects(loadInput(source({ subjects: [] }), 128), 'SUBJECT_COUNT', /no subject/);
  const nine = Array.from({ length: 9 }, (_, i) => ({ mask: rect(256, 224, i * 20, 0, i * 20 + 15, 50), classWord: 'ball' }));
  await rejects(loadInput(source({ subjects: nine }), 128), 'SUBJECT_COUNT', /9 masks but only 8 placeholder slots \(<asset0>\.\.<asset7>\)/);
});

test('class words the tokenizer cannot encode are refused', async () => {
  const one = (classWord: string, tok?: ClassWordTokenizer) =>
    loadInput(source({ subjects: [{ mask: ex.masks[0]!, classWord, name: 'm0.png' }] }), 128, tok ? { tokenizer: tok } : {});
  await rejects(one('  '), 'BAD_CLASS_WORD', /class word of m0\.png is empty/);
  await rejects(one('<asset1>'), 'BAD_CLASS_WORD', /contains < or >/);
  await rejects(one('...', tokenizer), 'BAD_CLASS_WORD', /has no letter or digit/);
  const failing: ClassWordTokenizer = {
    classWordIds: () => {
      throw new Error('encodes to no token');
    },
  };
  await rejects(one('ball', failing), 'BAD_CLASS_WORD', /"ball" cannot be encoded by the backbone's tokenizer: encodes to no token/);
  const unknownPieces: ClassWordTokenizer = { classWordIds: (w) => [...w].map((c) => (c === 'ß' ? 49407 : 1)), unkId: 49407 };
  await rejects(one('straße', unknownPieces), 'BAD_CLASS_WORD', /pieces the backbone's tokenizer does not know/);
  await expect(one('ball', tokenizer)).resolves.toBeDefined();
});

test('class words with control characters, emoji or symbols are refused before any tokenizer', async () => {
  const one = (classWord: string) => loadInput(source({ subjects: [{ mask: ex.masks[0]!, classWord, name: 'm0.png' }] }), 128);
  await rejects(one('do\u0000g'), 'BAD_CLASS_WORD', /contains the control character U\+0000/);
  await rejects(one('dog\nball'), 'BAD_CLASS_WORD', /contains the control character U\+000A/);
  await rejects(one('dog🐶'), 'BAD_CLASS_WORD', /contains the symbol 🐶 \(U\+1F436\)/);
  await rejects(one('🐶'), 'BAD_CLASS_WORD', /contains the symbol/);
  await rejects(one('star ★'), 'BAD_CLASS_WORD', /contains the symbol ★/);
  await rejects(one('<asset0>'), 'BAD_CLASS_WORD', /contains < or >/);
  // words of any script, digits, hyphens and apostrophes are class words
  for (const ok of ['teddy bear', 'Hund', 'chien', 'собака', '犬', 'r2-d2', "o'clock"]) await expect(one(ok)).resolves.toBeDefined();
});

test('validatePersonalizationInput checks the prompts against the subjects, with the same rules as the sample stage', () => {
  const input = { image: ex.image, subjects: [{ mask: ex.masks[0]!, classWord: 'ball' }] };
  expect(() => validatePersonalizationInput({ ...input, prompts: ['a photo of <asset0> on the grass'] })).not.toThrow();
  const refused = (prompts: string[]) => {
    try {
      validatePersonalizationInput({ ...input, prompts });
    } catch (e) {
      return [(e as InputError).code, (e as InputError).message];
    }
    return undefined;
  };
  expect(refused(['a photo of <asset0>', 'a photo of <asset1>'])).toEqual([
    'BAD_OPTION',
    'prompts[1]: <asset1> names no subject (there are 1: <asset0>..<asset0>)',
  ]);
  expect(refused(['<asset7> on the beach'])?.[0]).toBe('BAD_OPTION');
  expect(refused(['a photo\u0000'])?.[1]).toMatch(/prompts\[0\] contains the control character U\+0000/);
  // the image and masks are checked as loadInput checks them
  const all = rect(256, 224, 0, 0, 256, 224);
  expect(() => validatePersonalizationInput({ image: ex.image, subjects: [{ mask: all, classWord: 'ball' }] })).toThrow(/covers 100\.0%/);
  expect(() => checkPrompt('<asset2> and <asset1>', 2, 'prompt')).toThrow(/prompt: <asset2> names no subject/);
});

test('a mask outside the centre square is refused before fitting, whatever the backbone size', () => {
  const wide = { width: 400, height: 100, data: new Uint8Array(400 * 100 * 3) };
  const left = rect(400, 100, 0, 10, 140, 90); // the centre square is x 150..250
  expect(() => validatePersonalizationInput({ image: wide, subjects: [{ mask: left, classWord: 'ball' }] }, { imageName: 'wide.png' })).toThrow(
    /mask 0 \(ball\) lies outside the centre square crop of wide\.png/,
  );
  const touching = rect(400, 100, 0, 10, 151, 90);
  expect(() => validatePersonalizationInput({ image: wide, subjects: [{ mask: touching, classWord: 'ball' }] })).not.toThrow();
});
