/**
 * Every input a worker would refuse after GPU time is refused at the door, with its documented code, and a
 * refused request leaves nothing behind: no personalization or sample row, no blob (the uploads of a JSON
 * create stay as they were), no idempotency record, no job in any queue. Real Postgres, Redis and a temp store.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LightMyRequestResponse } from 'fastify';
import { createTenant, file, multipart, pngImage, pngMask, startHarness, type Harness, type Part } from '../testing/harness.js';

let h: Harness;
let alice: Awaited<ReturnType<typeof createTenant>>;
let png: Record<string, Uint8Array>;
let uploads: Record<string, string>;
let oneSubject: string;
let twoSubjects: string;

const box = (x: number, y: number, width: number, height: number) => ({ x, y, width, height });

/** Rows, blobs, stored answers and jobs in the whole system. */
async function footprint() {
  const jobs: Record<string, number> = {};
  for (const [name, q] of Object.entries(h.queues.queues)) jobs[name] = Object.values(await q.getJobCounts()).reduce((a, b) => a + b, 0);
  return {
    personalizations: await h.db.prisma.personalization.count(),
    samples: await h.db.prisma.sample.count(),
    idempotency: await h.db.prisma.idempotencyKey.count(),
    blobs: (await h.storage.list('')).map((b) => b.key).sort(),
    jobs,
  };
}

const post = (parts: Part[]) => {
  const body = multipart(parts);
  return h.server.inject({
    method: 'POST',
    url: '/v1/personalizations',
    payload: body.payload,
    headers: { ...body.headers, ...alice.auth, 'idempotency-key': 'k' },
  });
};
const form = (classes: string, masks: Uint8Array[] = [png.mask!], extra: Part[] = [], image = png.image!): Promise<LightMyRequestResponse> =>
  post([file('image', image), ...masks.map((m) => file('mask', m)), { name: 'classes', value: classes }, ...extra]);
const withOptions = (options: unknown, classes = 'dog', masks: Uint8Array[] = [png.mask!]) =>
  form(classes, masks, [{ name: 'options', value: typeof options === 'string' ? options : JSON.stringify(options) }]);
const json = (body: unknown) =>
  h.server.inject({
    method: 'POST',
    url: '/v1/personalizations',
    payload: JSON.stringify(body),
    headers: { ...alice.auth, 'content-type': 'application/json' },
  });
const jsonCreate = (over: Record<string, unknown>) => json({ image: uploads.image, masks: [uploads.mask], classes: ['dog'], ...over });
const samples = (id: string, body: unknown) =>
  h.server.inject({ method: 'POST', url: `/v1/personalizations/${id}/samples`, payload: body as object, headers: { ...alice.auth, 'idempotency-key': 's' } });

beforeAll(async () => {
  h = await startHarness({ maxUploadBytes: 64 * 1024, maxImagePixels: 1_000_000 });
  alice = await createTenant(h.db, 'alice');
  png = {
    image: await pngImage(64, 64),
    mask: await pngMask(64, 64, box(8, 8, 24, 24)),
    other: await pngMask(64, 64, box(36, 36, 20, 20)),
    all: await pngMask(64, 64, box(0, 0, 64, 64)),
    most: await pngMask(64, 64, box(0, 1, 64, 63)), // 98.4%
    nearly: await pngMask(64, 64, box(9, 8, 24, 24)), // IoU with `mask` 0.92
    empty: await pngMask(64, 64, box(0, 0, 0, 0)),
    small: await pngMask(32, 32),
    wide: await pngImage(64, 16),
    wideLeft: await pngMask(64, 16, box(0, 2, 20, 12)), // the centre square is x 24..40
  };
  const upload = async (bytes: Uint8Array) => {
    const u = (await h.server.inject({ method: 'POST', url: '/v1/uploads', headers: alice.auth })).json() as { id: string; url: string };
    const put = await h.server.inject({ method: 'PUT', url: u.url, payload: Buffer.from(bytes), headers: { ...alice.auth, 'content-type': 'image/png' } });
    expect(put.statusCode).toBe(204);
    return u.id;
  };
  uploads = { image: await upload(png.image!), mask: await upload(png.mask!), other: await upload(png.other!), all: await upload(png.all!) };
  uploads.nearly = await upload(png.nearly!);
  const created = async (parts: Part[]) => {
    const body = multipart(parts);
    const res = await h.server.inject({ method: 'POST', url: '/v1/personalizations', payload: body.payload, headers: { ...body.headers, ...alice.auth } });
    expect(res.statusCode).toBe(202);
    const { id } = res.json() as { id: string };
    await h.db.personalizations.updateStatus(id, 'succeeded');
    return id;
  };
  oneSubject = await created([file('image', png.image!), file('mask', png.mask!), { name: 'classes', value: 'dog' }]);
  twoSubjects = await created([file('image', png.image!), file('mask', png.mask!), file('mask', png.other!), { name: 'classes', value: 'dog,ball' }]);
});
afterAll(async () => h?.close());

type Case = [name: string, send: () => Promise<LightMyRequestResponse>, status: number, code: string, message?: RegExp];

const classWords: Case[] = [
  ['class word <asset0>', () => form('<asset0>'), 400, 'BAD_CLASS_WORD', /contains < or >/],
  ['class word <asset7>', () => form('<asset7>'), 400, 'BAD_CLASS_WORD'],
  ['class word with <', () => form('dog<'), 400, 'BAD_CLASS_WORD'],
  ['class word with >', () => form('big>dog'), 400, 'BAD_CLASS_WORD'],
  ['class word that is only an emoji', () => form('🐶'), 400, 'BAD_CLASS_WORD', /symbol 🐶/],
  ['class word with an emoji', () => form('dog🐶'), 400, 'BAD_CLASS_WORD'],
  ['class word that is an emoji ZWJ sequence', () => form('👨‍👩‍👧'), 400, 'BAD_CLASS_WORD'],
  ['class word that is a flag', () => form('🇩🇪'), 400, 'BAD_CLASS_WORD'],
  ['class word with a symbol', () => form('star★'), 400, 'BAD_CLASS_WORD'],
  ['class word ©', () => form('©'), 400, 'BAD_CLASS_WORD'],
  ['class word of dots', () => form('...'), 400, 'BAD_CLASS_WORD', /no letter or digit/],
  ['class word of dashes', () => form('---'), 400, 'BAD_CLASS_WORD'],
  ['class word of currency signs', () => form('$$'), 400, 'BAD_CLASS_WORD'],
  ['class word with a NUL', () => form('do\u0000g'), 400, 'BAD_CLASS_WORD', /control character U\+0000/],
  ['class word with a newline', () => form('dog\nball'), 400, 'BAD_CLASS_WORD', /U\+000A/],
  ['class word with a tab', () => form('dog\tball'), 400, 'BAD_CLASS_WORD'],
  ['class word with a bell', () => form('\u0007dog'), 400, 'BAD_CLASS_WORD'],
  ['class word with a DEL', () => form('dog\u007f'), 400, 'BAD_CLASS_WORD'],
  ['class word over 100 characters', () => form('d'.repeat(101)), 400, 'BAD_CLASS_WORD'],
  ['the second class word is bad', () => form('dog,<asset1>', [png.mask!, png.other!]), 400, 'BAD_CLASS_WORD', /mask 2/],
  ['JSON: class word <asset0>', () => jsonCreate({ classes: ['<asset0>'] }), 400, 'BAD_CLASS_WORD'],
  ['JSON: class word with a NUL', () => jsonCreate({ classes: ['dog\u0000'] }), 400, 'BAD_CLASS_WORD'],
  ['JSON: class word with a newline', () => jsonCreate({ classes: ['a\nb'] }), 400, 'BAD_CLASS_WORD'],
  ['JSON: class word that is an emoji', () => jsonCreate({ classes: ['🐱'] }), 400, 'BAD_CLASS_WORD'],
];

const masks: Case[] = [
  ['mask covering the whole image', () => form('dog', [png.all!]), 422, 'MASK_COVERS_IMAGE', /covers 100\.0% of the image/],
  ['mask covering 98.4% of the image', () => form('dog', [png.most!]), 422, 'MASK_COVERS_IMAGE', /98\.4%/],
  ['the second mask covers the image', () => form('dog,ball', [png.mask!, png.all!]), 422, 'MASK_COVERS_IMAGE'],
  ['two identical masks', () => form('dog,ball', [png.mask!, png.mask!]), 422, 'MASKS_OVERLAP', /IoU 1\.00/],
  ['two masks with IoU 0.92', () => form('dog,ball', [png.mask!, png.nearly!]), 422, 'MASKS_OVERLAP'],
  ['the last two of three masks overlap', () => form('dog,ball,cat', [png.other!, png.mask!, png.nearly!]), 422, 'MASKS_OVERLAP', /mask 2 .* mask 3/],
  ['a mask outside the centre square', () => form('dog', [png.wideLeft!], [], png.wide!), 422, 'EMPTY_MASK', /centre square/],
  ['an empty mask', () => form('dog', [png.empty!]), 422, 'EMPTY_MASK'],
  ['a mask of another size', () => form('dog', [png.small!]), 422, 'MASK_SIZE_MISMATCH'],
  ['JSON: mask covering the whole image', () => jsonCreate({ masks: [uploads.all] }), 422, 'MASK_COVERS_IMAGE'],
  ['JSON: two masks with IoU 0.92', () => jsonCreate({ masks: [uploads.mask, uploads.nearly], classes: ['dog', 'ball'] }), 422, 'MASKS_OVERLAP'],
  ['a mask that is not an image', () => form('dog', [Buffer.from('white on black, honest')]), 415, 'NOT_AN_IMAGE'],
  ['a truncated mask', () => form('dog', [png.mask!.slice(0, 60)]), 400, 'CORRUPT_IMAGE'],
  ['five masks (MAX_SUBJECTS 4)', () => form('a,b,c,d,e', Array(5).fill(png.mask!)), 400, 'TOO_MANY_SUBJECTS'],
];

const options: Case[] = [
  ['prompt naming <asset7> with one subject', () => withOptions({ prompts: ['a photo of <asset7>'] }), 400, 'BAD_OPTIONS', /<asset7> names no subject/],
  ['prompt naming <asset1> with one subject', () => withOptions({ prompts: ['<asset0> and <asset1>'] }), 400, 'BAD_OPTIONS'],
  ['prompt naming <asset2> with two subjects', () => withOptions({ prompts: ['<asset2>'] }, 'dog,ball', [png.mask!, png.other!]), 400, 'BAD_OPTIONS'],
  ['the second prompt is bad', () => withOptions({ prompts: ['<asset0> on a beach', '<asset3> in snow'] }), 400, 'BAD_OPTIONS', /prompts\[1\]/],
  ['a prompt with a NUL', () => withOptions({ prompts: ['<asset0>\u0000'] }), 400, 'BAD_OPTIONS', /U\+0000/],
  ['a prompt with a newline', () => withOptions({ prompts: ['<asset0>\nin snow'] }), 400, 'BAD_OPTIONS'],
  ['an empty prompt', () => withOptions({ prompts: [''] }), 400, 'BAD_OPTIONS'],
  ['33 prompts', () => withOptions({ prompts: Array(33).fill('<asset0>') }), 400, 'BAD_OPTIONS'],
  ['prompts not a list', () => withOptions({ prompts: '<asset0>' }), 400, 'BAD_OPTIONS'],
  ['steps 0', () => withOptions({ steps: 0 }), 400, 'BAD_OPTIONS'],
  ['an unknown option', () => withOptions({ learningRate: 1 }), 400, 'BAD_OPTIONS'],
  ['options as a JSON list', () => withOptions('[1]'), 400, 'BAD_OPTIONS'],
  ['JSON: prompt naming <asset3>', () => jsonCreate({ options: { prompts: ['<asset3>'] } }), 400, 'BAD_OPTIONS'],
  ['JSON: prompt with a NUL', () => jsonCreate({ options: { prompts: ['a\u0000'] } }), 400, 'BAD_OPTIONS'],
];

const requests: Case[] = [
  ['webhook file://', () => form('dog', undefined, [{ name: 'webhook_url', value: 'file:///etc/passwd' }]), 400, 'BAD_WEBHOOK_URL', /file:/],
  ['webhook ftp://', () => form('dog', undefined, [{ name: 'webhook_url', value: 'ftp://example.com/x' }]), 400, 'BAD_WEBHOOK_URL'],
  ['webhook with credentials', () => form('dog', undefined, [{ name: 'webhook_url', value: 'https://u:p@example.com/x' }]), 400, 'BAD_WEBHOOK_URL'],
  ['JSON: an image that is not an upload id', () => jsonCreate({ image: 'photo.png' }), 400, 'VALIDATION_ERROR'],
  ['JSON: masks not a list', () => jsonCreate({ masks: uploads.mask }), 400, 'VALIDATION_ERROR'],
  ['JSON: a class word that is a number', () => jsonCreate({ classes: [7] }), 400, 'VALIDATION_ERROR'],
  ['JSON: a webhook that is a number', () => jsonCreate({ webhook_url: 7 }), 400, 'VALIDATION_ERROR'],
  ['JSON: an upload never issued', () => jsonCreate({ image: '00000000-0000-4000-8000-000000000000' }), 422, 'UPLOAD_NOT_FOUND'],
  [
    'two images',
    () => post([file('image', png.image!), file('image', png.image!), file('mask', png.mask!), { name: 'classes', value: 'dog' }]),
    400,
    'BAD_REQUEST',
  ],
];

const samplePrompts: Case[] = [
  ['sample prompt <asset1> of one subject', () => samples(oneSubject, { prompts: ['<asset1> on a beach'] }), 400, 'BAD_PROMPT', /<asset1> names no subject/],
  ['sample prompt <asset7>', () => samples(oneSubject, { prompts: ['<asset7>'] }), 400, 'BAD_PROMPT'],
  ['sample prompt <asset2> of two subjects', () => samples(twoSubjects, { prompts: ['<asset0> and <asset2>'] }), 400, 'BAD_PROMPT'],
  ['the third sample prompt is bad', () => samples(oneSubject, { prompts: ['<asset0>', 'x', '<asset4>'] }), 400, 'BAD_PROMPT', /prompts\[2\]/],
  ['a sample prompt with a NUL', () => samples(oneSubject, { prompts: ['<asset0>\u0000'] }), 400, 'BAD_PROMPT'],
  ['a sample prompt with a newline', () => samples(oneSubject, { prompts: ['<asset0>\r\n'] }), 400, 'BAD_PROMPT'],
  ['65 sample prompts', () => samples(oneSubject, { prompts: Array(65).fill('<asset0>') }), 400, 'VALIDATION_ERROR'],
  ['65 seeds', () => samples(oneSubject, { prompts: ['<asset0>'], seeds: Array.from({ length: 65 }, (_, i) => i) }), 400, 'VALIDATION_ERROR'],
  ['9 prompts x 8 seeds', () => samples(oneSubject, { prompts: Array(9).fill('<asset0>'), seeds: [1, 2, 3, 4, 5, 6, 7, 8] }), 400, 'VALIDATION_ERROR'],
  ['seed with seeds', () => samples(oneSubject, { prompts: ['<asset0>'], seed: 1, seeds: [2] }), 400, 'VALIDATION_ERROR'],
  ['no sample prompt', () => samples(oneSubject, { prompts: [] }), 400, 'VALIDATION_ERROR'],
  ['a sample prompt over 500 characters', () => samples(oneSubject, { prompts: ['a'.repeat(501)] }), 400, 'VALIDATION_ERROR'],
  ['guidance 100', () => samples(oneSubject, { prompts: ['<asset0>'], guidance: 100 }), 400, 'VALIDATION_ERROR'],
];

const all = { classWords, masks, options, requests, samplePrompts };

describe('refused at the door, leaving nothing behind', () => {
  it('covers at least 60 bad inputs', () => {
    expect(Object.values(all).flat().length).toBeGreaterThanOrEqual(60);
  });

  for (const [group, cases] of Object.entries(all)) {
    it(`${group}: each answers its status and code and changes nothing`, async () => {
      for (const [name, send, status, code, message] of cases) {
        const before = await footprint();
        const res = await send();
        const body = res.json() as { code: string; message: string };
        expect({ name, status: res.statusCode, code: body.code }).toEqual({ name, status, code });
        if (message) expect({ name, message: body.message }).toEqual({ name, message: expect.stringMatching(message) });
        expect({ name, after: await footprint() }).toEqual({ name, after: before });
      }
    });
  }

  it('accepts what the cases refuse once it is corrected: the uploads were kept, the key is free', async () => {
    expect((await form('dog,ball', [png.mask!, png.other!], [{ name: 'options', value: '{"prompts":["<asset1> next to <asset0>"]}' }])).statusCode).toBe(202);
    expect((await jsonCreate({ classes: ['teddy bear'] })).statusCode).toBe(202);
    expect((await samples(twoSubjects, { prompts: ['<asset0> and <asset1>'] })).statusCode).toBe(202);
  });
});
