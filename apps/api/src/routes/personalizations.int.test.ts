import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DEFAULT_CONFIG } from '../config.js';
import { buildServer } from '../server.js';
import { createTenant, file, multipart, pngHeaderOnly, pngImage, pngMask, startHarness, type Harness, type Part } from '../testing/harness.js';

let h: Harness;
let alice: Awaited<ReturnType<typeof createTenant>>;
let bob: Awaited<ReturnType<typeof createTenant>>;
let image: Uint8Array;
let mask: Uint8Array;

beforeAll(async () => {
  h = await startHarness({ maxUploadBytes: 64 * 1024, maxImagePixels: 1_000_000 });
  alice = await createTenant(h.db, 'alice');
  bob = await createTenant(h.db, 'bob');
  image = await pngImage(32, 32);
  mask = await pngMask(32, 32);
});
afterAll(async () => h?.close());

const validParts = (extra: Part[] = []): Part[] => [
  file('image', image),
  file('mask', mask),
  { name: 'classes', value: 'dog' },
  { name: 'options', value: JSON.stringify({ preset: 'tiny', steps: 5 }) },
  ...extra,
];

async function post(parts: Part[], headers: Record<string, string> = alice.auth) {
  const body = multipart(parts);
  return h.server.inject({ method: 'POST', url: '/v1/personalizations', payload: body.payload, headers: { ...body.headers, ...headers } });
}

/** Rows and blobs in the whole system: a refused request must leave both unchanged. */
async function footprint() {
  return { rows: await h.db.prisma.personalization.count(), blobs: (await h.storage.list('')).length, idem: await h.db.prisma.idempotencyKey.count() };
}

describe('POST /v1/personalizations', () => {
  it('answers 202, stores the uploads under the tenant, creates a queued row and enqueues the flow', async () => {
    const res = await post(validParts());
    expect(res.statusCode).toBe(202);
    const body = res.json() as { id: string; status: string; links: Record<string, string> };
    expect(body).toEqual({ id: expect.any(String), status: 'queued', links: expect.objectContaining({ self: `/v1/personalizations/${body.id}` }) });

    const keys = (await h.storage.list(`tenants/${alice.id}/personalizations/${body.id}`)).map((b) => b.key).sort();
    expect(keys).toEqual([
      `tenants/${alice.id}/personalizations/${body.id}/input/image.png`,
      `tenants/${alice.id}/personalizations/${body.id}/input/mask-0.png`,
    ]);
    expect(Buffer.from(await h.storage.get(keys[0]!)).equals(Buffer.from(image))).toBe(true);

    const row = await h.db.personalizations.findById(body.id);
    expect(row).toMatchObject({
      tenantId: alice.id,
      status: 'queued',
      subjects: [{ classWord: 'dog', maskKey: keys[1] }],
      options: { preset: 'tiny', steps: 5 },
    });

    // The flow's leaf (augment) is ready to run; its root (sample) waits for its children.
    const augment = await h.queues.queues.augment.getJob(`personalization.augment-${body.id}`);
    expect(augment?.data).toEqual({ v: 1, personalizationId: body.id, tenantId: alice.id });
    expect(await augment?.getState()).toBe('waiting');
    expect(await (await h.queues.queues.sample.getJob(`personalization.sample-${body.id}`))?.getState()).toBe('waiting-children');

    const got = await h.server.inject({ method: 'GET', url: `/v1/personalizations/${body.id}`, headers: alice.auth });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toMatchObject({ id: body.id, status: 'queued', progress: [], subjects: [{ class: 'dog' }], artifacts: [] });
  });

  it('keeps a noun phrase per subject (repeated `phrase` fields, commas and all) and the placeholder rows option, and shows them', async () => {
    const res = await post([
      file('image', image),
      file('mask', mask),
      file('mask', await pngMask(32, 32, { x: 20, y: 20, width: 8, height: 8 })),
      { name: 'classes', value: 'dog,ball' },
      { name: 'phrase', value: '  brown checked dog, with a hat ' },
      { name: 'phrase', value: 'red ball' },
      { name: 'options', value: JSON.stringify({ preset: 'tiny', placeholderVectors: 6 }) },
    ]);
    expect(res.statusCode).toBe(202);
    const { id } = res.json() as { id: string };
    const row = await h.db.personalizations.findById(id);
    expect(row?.subjects).toEqual([
      { classWord: 'dog', nounPhrase: 'brown checked dog, with a hat', maskKey: expect.stringMatching(/mask-0\.png$/) },
      { classWord: 'ball', nounPhrase: 'red ball', maskKey: expect.stringMatching(/mask-1\.png$/) },
    ]);
    expect(row?.options).toEqual({ preset: 'tiny', placeholderVectors: 6 });
    const got = await h.server.inject({ method: 'GET', url: `/v1/personalizations/${id}`, headers: alice.auth });
    expect(got.json()).toMatchObject({
      subjects: [
        { class: 'dog', phrase: 'brown checked dog, with a hat' },
        { class: 'ball', phrase: 'red ball' },
      ],
    });
  });

  it('replays the first answer for a retry with the same Idempotency-Key, without a second job', async () => {
    const key = { ...alice.auth, 'idempotency-key': 'retry-1' };
    const first = await post(validParts(), key);
    expect(first.statusCode).toBe(202);
    const before = await footprint();
    const jobsBefore = await h.queues.queues.augment.getJobCountByTypes('waiting');
    const second = await post(validParts(), key);
    expect(second.statusCode).toBe(202);
    expect(second.json()).toEqual(first.json());
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(await footprint()).toEqual(before);
    expect(await h.queues.queues.augment.getJobCountByTypes('waiting')).toBe(jobsBefore);
  });

  it('lets exactly one of two concurrent requests with the same Idempotency-Key create a personalization', async () => {
    const before = await footprint();
    const key = { ...alice.auth, 'idempotency-key': 'race-1' };
    const [a, b] = await Promise.all([post(validParts(), key), post(validParts(), key)]);
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
    expect(a.json()).toEqual(b.json());
    // One row, its two blobs, one stored answer: the loser undid its own row and blobs.
    expect(await footprint()).toEqual({ rows: before.rows + 1, blobs: before.blobs + 2, idem: before.idem + 1 });
  });

  it('refuses the same Idempotency-Key with a different request (409), leaving nothing behind', async () => {
    const key = { ...alice.auth, 'idempotency-key': 'retry-2' };
    expect((await post(validParts(), key)).statusCode).toBe(202);
    const before = await footprint();
    const res = await post([file('image', image), file('mask', mask), { name: 'classes', value: 'cat' }], key);
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await footprint()).toEqual(before);
  });

  it('undoes the row, the blobs and the stored answer when the flow cannot be enqueued, so a retry with the key creates it', async () => {
    const down = buildServer({
      deps: {
        ...h.deps,
        queues: {
          ...h.deps.queues,
          enqueuePersonalization: async () => {
            throw new Error('redis is down');
          },
        },
      },
      config: { ...DEFAULT_CONFIG, maxUploadBytes: 64 * 1024, maxImagePixels: 1_000_000 },
      rateLimitNamespace: `${h.prefix}-down:`,
    });
    try {
      const before = await footprint();
      const key = { ...alice.auth, 'idempotency-key': 'enqueue-fails' };
      const body = multipart(validParts());
      const failed = await down.inject({ method: 'POST', url: '/v1/personalizations', payload: body.payload, headers: { ...body.headers, ...key } });
      expect(failed.statusCode).toBe(500);
      expect(await footprint()).toEqual(before);
      const retry = await post(validParts(), key);
      expect(retry.statusCode).toBe(202);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      expect(await footprint()).toEqual({ rows: before.rows + 1, blobs: before.blobs + 2, idem: before.idem + 1 });
    } finally {
      await down.close();
    }
  });

  it('keeps Idempotency-Keys per tenant: another tenant may use the same key', async () => {
    const res = await post(validParts(), { ...bob.auth, 'idempotency-key': 'retry-1' });
    expect(res.statusCode).toBe(202);
  });

  it('refuses bad uploads with a clear 4xx code and leaves no row and no blob', async () => {
    const big = await pngImage(32, 32);
    const cases: [string, Part[], number, string][] = [
      ['not an image', [file('image', Buffer.from('hello, I am text')), file('mask', mask), { name: 'classes', value: 'dog' }], 415, 'NOT_AN_IMAGE'],
      [
        'huge dimensions in the header',
        [file('image', pngHeaderOnly(50_000, 50_000)), file('mask', mask), { name: 'classes', value: 'dog' }],
        413,
        'IMAGE_TOO_LARGE',
      ],
      ['mask size mismatch', [file('image', big), file('mask', await pngMask(16, 16)), { name: 'classes', value: 'dog' }], 422, 'MASK_SIZE_MISMATCH'],
      [
        'empty mask',
        [file('image', big), file('mask', await pngMask(32, 32, { x: 0, y: 0, width: 0, height: 0 })), { name: 'classes', value: 'dog' }],
        422,
        'EMPTY_MASK',
      ],
      ['missing classes', [file('image', big), file('mask', mask)], 400, 'MISSING_CLASSES'],
      ['an empty class', [file('image', big), file('mask', mask), file('mask', mask), { name: 'classes', value: 'dog,' }], 400, 'MISSING_CLASSES'],
      ['class count != mask count', [file('image', big), file('mask', mask), { name: 'classes', value: 'dog,ball' }], 400, 'CLASS_COUNT_MISMATCH'],
      [
        'phrase count != mask count',
        validParts([
          { name: 'phrase', value: 'a dog' },
          { name: 'phrase', value: 'a ball' },
        ]),
        400,
        'PHRASE_COUNT_MISMATCH',
      ],
      ['a blank phrase', validParts([{ name: 'phrase', value: '  ' }]), 400, 'BAD_PHRASE'],
      ['a phrase over 200 characters', validParts([{ name: 'phrase', value: 'very '.repeat(41) }]), 400, 'BAD_PHRASE'],
      ['a phrase naming a placeholder', validParts([{ name: 'phrase', value: 'a <asset0> dog' }]), 400, 'BAD_CLASS_WORD'],
      ['placeholder rows out of range', [...validParts().slice(0, 3), { name: 'options', value: '{"placeholderVectors":17}' }], 400, 'BAD_OPTIONS'],
      ['missing image', [file('mask', mask), { name: 'classes', value: 'dog' }], 400, 'MISSING_IMAGE'],
      ['missing mask', [file('image', big), { name: 'classes', value: 'dog' }], 400, 'MISSING_MASK'],
      [
        'file over the upload limit',
        [file('image', Buffer.alloc(100 * 1024, 1)), file('mask', mask), { name: 'classes', value: 'dog' }],
        413,
        'FILE_TOO_LARGE',
      ],
      ['unknown preset', [...validParts().slice(0, 3), { name: 'options', value: '{"preset":"huge"}' }], 400, 'BAD_OPTIONS'],
      ['options not JSON', [...validParts().slice(0, 3), { name: 'options', value: '{preset' }], 400, 'BAD_OPTIONS'],
      ['webhook to loopback', validParts([{ name: 'webhook_url', value: 'http://127.0.0.1:9/hook' }]), 400, 'BAD_WEBHOOK_URL'],
      ['webhook not a URL', validParts([{ name: 'webhook_url', value: 'not a url' }]), 400, 'BAD_WEBHOOK_URL'],
      ['unknown field', validParts([{ name: 'colour', value: 'red' }]), 400, 'UNKNOWN_FIELD'],
      [
        'one mask more than MAX_SUBJECTS (4)',
        [file('image', big), ...Array.from({ length: 5 }, () => file('mask', mask)), { name: 'classes', value: 'a,b,c,d,e' }],
        400,
        'TOO_MANY_SUBJECTS',
      ],
      [
        'far too many masks',
        [file('image', big), ...Array.from({ length: 9 }, () => file('mask', mask)), { name: 'classes', value: 'a' }],
        400,
        'TOO_MANY_SUBJECTS',
      ],
    ];
    const before = await footprint();
    for (const [name, parts, status, code] of cases) {
      const res = await post(parts, { ...alice.auth, 'idempotency-key': `bad-${code}` });
      expect({ name, status: res.statusCode, code: (res.json() as { code: string }).code }).toEqual({ name, status, code });
      expect((res.json() as { message: string }).message.length).toBeGreaterThan(10);
    }
    expect(await footprint()).toEqual(before);
  });

  it('answers a multipart body past its limits with the documented codes (one mask too many is TOO_MANY_SUBJECTS, whatever the order)', async () => {
    const before = await footprint();
    const masks = (n: number) => Array.from({ length: n }, () => file('mask', mask));
    const cases: [string, Part[], number, string][] = [
      [
        'image and MAX_SUBJECTS + 1 masks, the files limit',
        [file('image', image), ...masks(5), { name: 'classes', value: 'a,b,c,d,e' }],
        400,
        'TOO_MANY_SUBJECTS',
      ],
      ['masks first, then the image', [...masks(6), file('image', image), { name: 'classes', value: 'a' }], 400, 'TOO_MANY_SUBJECTS'],
      [
        // 8 fields, and a phrase per mask (MAX_SUBJECTS 4): one more
        'thirteen fields',
        [file('image', image), file('mask', mask), ...Array.from({ length: 13 }, () => ({ name: 'classes', value: 'dog' }))],
        413,
        'TOO_MANY_FIELDS',
      ],
    ];
    for (const [name, parts, status, code] of cases) {
      const res = await post(parts);
      expect({ name, status: res.statusCode, code: (res.json() as { code: string }).code }).toEqual({ name, status, code });
    }
    expect(await footprint()).toEqual(before);
  });

  it('says what is wrong with a webhook URL that is not http(s)', async () => {
    const res = await post(validParts([{ name: 'webhook_url', value: 'file:///etc/passwd' }]));
    expect(res.statusCode).toBe(400);
    const { code, message } = res.json() as { code: string; message: string };
    expect(code).toBe('BAD_WEBHOOK_URL');
    expect(message).toMatch(/file:.*only http and https/);
    expect(message).not.toMatch(/null/);
  });

  it('refuses requests without a valid API key (401) and other content types', async () => {
    expect((await post(validParts(), {})).statusCode).toBe(401);
    const res = await post(validParts(), { authorization: 'Bearer dsk_not-a-key' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    const text = await h.server.inject({
      method: 'POST',
      url: '/v1/personalizations',
      payload: 'image=x',
      headers: { ...alice.auth, 'content-type': 'text/plain' },
    });
    expect(text.statusCode).toBe(415);
    expect(text.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
  });
});

describe('one tenant never sees another tenant', () => {
  it('answers 404 to another tenant on read, cancel, delete, samples and files', async () => {
    const { id } = (await post(validParts())).json() as { id: string };
    const asBob = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
      h.server.inject({ method, url, headers: bob.auth, ...(payload ? { payload } : {}) });
    for (const res of [
      await asBob('GET', `/v1/personalizations/${id}`),
      await asBob('POST', `/v1/personalizations/${id}/cancel`),
      await asBob('DELETE', `/v1/personalizations/${id}`),
      await asBob('POST', `/v1/personalizations/${id}/samples`, { prompts: ['a photo'] }),
      await asBob('GET', `/v1/samples?personalization=${id}`),
      await asBob('GET', `/v1/files/tenants/${alice.id}/personalizations/${id}/input/image.png`),
    ]) {
      expect(res.statusCode).toBe(404);
      expect((res.json() as { code: string }).code).toBe('NOT_FOUND');
    }
    const still = await h.server.inject({ method: 'GET', url: `/v1/personalizations/${id}`, headers: alice.auth });
    expect(still.json()).toMatchObject({ status: 'queued', cancelRequestedAt: null });
  });
});

describe('metrics', () => {
  it("serves the stored metrics as they are: training's summary, and the CLIP (and judge) evaluation only when the samples were scored", async () => {
    const training = { steps: { phase1: 3, phase2: 3 }, loss: { phase2: { first: { total: 0.5 }, last: { total: 0.25 } } }, timingsMs: { train: 1200 } };
    const evaluation = {
      model: '/var/cache/dynasyn/clip/0123456789abcdef',
      byCategory: {
        plain: { count: 2, clipT: 0.31, clipI: 0.82 },
        action: { count: 1, clipT: 0.28, clipI: 0.79 },
        interaction: { count: 1, clipT: 0.26, clipI: null },
      },
      overall: { count: 4, clipT: 0.29, clipI: 0.81 },
    };
    const get = async (id: string) =>
      (await h.server.inject({ method: 'GET', url: `/v1/personalizations/${id}`, headers: alice.auth })).json() as { metrics?: object };
    const scored = (await post(validParts())).json() as { id: string };
    await h.db.personalizations.updateStatus(scored.id, 'succeeded', { metrics: { ...training, evaluation } });
    expect((await get(scored.id)).metrics).toEqual({ ...training, evaluation });
    const plain = (await post(validParts())).json() as { id: string };
    await h.db.personalizations.updateStatus(plain.id, 'succeeded', { metrics: training });
    expect((await get(plain.id)).metrics).toEqual(training);
    // a sample worker with a toy-world judge too (JUDGE_MODEL): its figures per category and its reading of the reference
    const judged = {
      ...evaluation,
      byCategory: {
        plain: { count: 2, clipT: 0.31, clipI: 0.82, identity: 0.5, attributes: 0.875, prompt: null },
        action: { count: 1, clipT: 0.28, clipI: 0.79, identity: 1, attributes: 1, prompt: 1 },
        interaction: { count: 1, clipT: 0.26, clipI: null, identity: null, attributes: null, prompt: 0 },
      },
      overall: { count: 4, clipT: 0.29, clipI: 0.81, identity: 2 / 3, attributes: 0.9166666666666666, prompt: 0.5 },
      judge: {
        model: '/var/cache/dynasyn/judge/0123456789abcdef',
        identities: [
          { class: 'dog', colour: 'purple', pattern: 'plain', accessory: 'crown' },
          { class: 'fish', colour: 'purple', pattern: 'checks', accessory: 'bow' },
        ],
      },
    };
    const withJudge = (await post(validParts())).json() as { id: string };
    await h.db.personalizations.updateStatus(withJudge.id, 'succeeded', { metrics: { ...training, evaluation: judged } });
    expect((await get(withJudge.id)).metrics).toEqual({ ...training, evaluation: judged });
  });
});

describe('cancel and delete', () => {
  it('cancels a queued personalization at once and a running one by flag', async () => {
    const { id } = (await post(validParts())).json() as { id: string };
    const res = await h.server.inject({ method: 'POST', url: `/v1/personalizations/${id}/cancel`, headers: alice.auth });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ id, status: 'canceled', cancelRequestedAt: expect.any(String) });

    const running = (await post(validParts())).json() as { id: string };
    await h.db.personalizations.updateStatus(running.id, 'training');
    const flagged = await h.server.inject({ method: 'POST', url: `/v1/personalizations/${running.id}/cancel`, headers: alice.auth });
    expect(flagged.json()).toMatchObject({ status: 'training', cancelRequestedAt: expect.any(String) });

    await h.db.personalizations.updateStatus(running.id, 'succeeded');
    const done = await h.server.inject({ method: 'POST', url: `/v1/personalizations/${running.id}/cancel`, headers: alice.auth });
    expect(done.statusCode).toBe(409);
    expect(done.json()).toMatchObject({ code: 'ALREADY_FINISHED' });
  });

  it('deletes the row and every blob of a personalization', async () => {
    const { id } = (await post(validParts())).json() as { id: string };
    const prefix = `tenants/${alice.id}/personalizations/${id}`;
    await h.storage.put(`${prefix}/artifacts/report.html`, Buffer.from('<html></html>'));
    expect((await h.storage.list(prefix)).length).toBe(3);
    const res = await h.server.inject({ method: 'DELETE', url: `/v1/personalizations/${id}`, headers: alice.auth });
    expect(res.statusCode).toBe(204);
    expect(await h.storage.list(prefix)).toEqual([]);
    expect(await h.db.personalizations.findById(id)).toBeNull();
    expect((await h.server.inject({ method: 'GET', url: `/v1/personalizations/${id}`, headers: alice.auth })).statusCode).toBe(404);
  });

  it('finds a personalization by its id in upper case too (read, samples, list, cancel, delete)', async () => {
    const { id } = (await post(validParts())).json() as { id: string };
    const upper = id.toUpperCase();
    const got = await h.server.inject({ method: 'GET', url: `/v1/personalizations/${upper}`, headers: alice.auth });
    expect([got.statusCode, (got.json() as { id: string }).id]).toEqual([200, id]);
    const early = await h.server.inject({
      method: 'POST',
      url: `/v1/personalizations/${upper}/samples`,
      headers: alice.auth,
      payload: { prompts: ['<asset0>'] },
    });
    expect(early.json()).toMatchObject({ code: 'NOT_SUCCEEDED' });
    expect((await h.server.inject({ method: 'GET', url: `/v1/samples?personalization=${upper}`, headers: alice.auth })).statusCode).toBe(200);
    expect((await h.server.inject({ method: 'POST', url: `/v1/personalizations/${upper}/cancel`, headers: alice.auth })).json()).toMatchObject({
      id,
      status: 'canceled',
    });
    expect((await h.server.inject({ method: 'DELETE', url: `/v1/personalizations/${upper}`, headers: alice.auth })).statusCode).toBe(204);
    expect(await h.db.personalizations.findById(id)).toBeNull();
    // another tenant's id stays a 404 in any case
    const theirs = (await post(validParts(), bob.auth)).json() as { id: string };
    expect((await h.server.inject({ method: 'GET', url: `/v1/personalizations/${theirs.id.toUpperCase()}`, headers: alice.auth })).statusCode).toBe(404);
  });

  it('answers 400 for an id that is not a uuid', async () => {
    const res = await h.server.inject({ method: 'GET', url: '/v1/personalizations/not-a-uuid', headers: alice.auth });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION_ERROR' });
  });
});
