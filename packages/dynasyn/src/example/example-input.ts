/**
 * A deterministic example input with two subjects, drawn procedurally (no assets to ship): a shaded red
 * ball (disc) and a blue box (square) on a table in front of a wall, with one mask per subject. Both class
 * words are in the tiny tokenizer's word list (diffusion's TINY_TOKENIZER_WORDS), so the tiny bundle takes them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodePng, maskToImage } from '@dynasyn/imaging';
import type { Mask, RgbImage } from '../types.js';

export interface ExampleSubject {
  classWord: string;
  nounPhrase: string;
}

export const EXAMPLE_SUBJECTS: readonly ExampleSubject[] = [
  { classWord: 'ball', nounPhrase: 'red ball' },
  { classWord: 'box', nounPhrase: 'blue box' },
];

export interface ExampleInput {
  image: RgbImage;
  masks: Mask[];
  subjects: readonly ExampleSubject[];
}

export interface ExampleFiles {
  image: string;
  masks: string[];
  classWords: string[];
  nounPhrases: string[];
}

/** Draws the example at `width` x `height` (default 256 x 224: not square, so fitting to the backbone crops). */
export function drawExampleInput(width = 256, height = 224): ExampleInput {
  const data = new Uint8Array(width * height * 3);
  const ball = new Uint8Array(width * height);
  const box = new Uint8Array(width * height);
  const horizon = Math.round(height * 0.62);
  const r = Math.round(Math.min(width, height) * 0.17);
  const cx = Math.round(width * 0.3);
  const cy = horizon + Math.round(r * 0.35);
  const side = Math.round(Math.min(width, height) * 0.3);
  const bx = Math.round(width * 0.56);
  const by = horizon + Math.round(side * 0.25) - side;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      // wall: pale vertical gradient; table: warm wood with faint stripes
      let rgb: [number, number, number] =
        y < horizon
          ? [222 - (y * 30) / horizon, 218 - (y * 25) / horizon, 205 - (y * 20) / horizon]
          : [150 + 12 * Math.sin(y * 0.9), 105 + 8 * Math.sin(y * 0.9), 70];
      const dx = x - cx;
      const dy = y - cy;
      if (dx * dx + dy * dy <= r * r) {
        ball[p] = 1;
        // Lambert-ish shading from a light at the top left
        const nz = Math.sqrt(Math.max(0, 1 - (dx * dx + dy * dy) / (r * r)));
        const light = Math.max(0, ((-0.5 * dx) / r - (0.5 * dy) / r + 0.7 * nz) / 1.0);
        rgb = [90 + 165 * light, 15 + 40 * light * light, 20 + 40 * light * light];
      } else if (x >= bx && x < bx + side && y >= by && y < by + side) {
        box[p] = 1;
        const edge = Math.min(x - bx, bx + side - 1 - x, y - by, by + side - 1 - y) < 3;
        rgb = edge ? [20, 40, 110] : [40 + (x - bx) * 0.2, 80 + (y - by) * 0.3, 200];
      }
      data.set(
        rgb.map((v) => Math.max(0, Math.min(255, Math.round(v)))),
        p * 3,
      );
    }
  }
  return {
    image: { width, height, data },
    masks: [
      { width, height, data: ball },
      { width, height, data: box },
    ],
    subjects: EXAMPLE_SUBJECTS,
  };
}

/** Writes `image.png`, `mask0.png` (ball), `mask1.png` (box) into `dir`; byte-identical on every call. */
export async function createExampleInput(dir: string): Promise<ExampleFiles> {
  const ex = drawExampleInput();
  await mkdir(dir, { recursive: true });
  const image = path.join(dir, 'image.png');
  await writeFile(image, await encodePng(ex.image));
  const masks: string[] = [];
  for (const [i, m] of ex.masks.entries()) {
    const file = path.join(dir, `mask${i}.png`);
    await writeFile(file, await encodePng(maskToImage(m)));
    masks.push(file);
  }
  return { image, masks, classWords: ex.subjects.map((s) => s.classWord), nounPhrases: ex.subjects.map((s) => s.nounPhrase) };
}
