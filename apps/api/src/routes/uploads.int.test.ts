/**
 * The JSON form of POST /v1/personalizations with uploads (local storage backend: the upload URL is the API's
 * own PUT path); the presigned-S3 form is in services.int.test.ts. Real Postgres, Redis and a temp store.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTenant, pngImage, pngMask, startHarness, type Harness } from '../testing/harness.js';

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

interface Upload {
  id: string;
  url: string;
  method: string;
  expires_at: string;
  max_bytes: number;
}

/** Asks for an upload and PUTs `bytes` to its URL, as a client would; returns the upload id. */
async function upload(bytes: Uint8Array, auth = alice.auth, contentType = 'image/png'): Promise<string> {
  const res = await h.server.inject({ method: 'POST', url: '/v1/uploads', headers: auth });
  expect(res.statusCode).toBe(201);
  const u = res.json() as Upload;
  const put = await h.server.inject({ method: u.method as 'PUT', url: u.url, payload: Buffer.from(bytes), headers: { ...auth, 'content-type': contentType } });
  expect(put.statusCode).toBe(204);
  return u.id;
}

const create = (body: unknown, headers: Record<string, string> = alice.auth) =>
  h.server.inject({ method: 'POST', url: '/v1/personalizations', payload: JSON.stringify(body), headers: { ...headers, 'content-type': 'application/json' } });

const footprint = async () => ({ rows: await h.db.prisma.personalization.count(), blobs: (await h.storage.list('')).map((b) => b.key).sort() });

describe('uploads', () => {
  it('POST /v1/uploads hands out an id and a URL to PUT to; the bytes land under the tenant upload folder', async () => {
    const res = await h.server.inject({ method: 'POST', url: '/v1/uploads', headers: alice.auth });
    expect(res.statusCode).toBe(201);
    const u = res.json() as Upload;
    expect(u).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      url: `/v1/uploads/${u.id}`,
      method: 'PUT',
      expires_at: expect.any(String),
      max_bytes: 64 * 1024,
    });
    expect(Date.parse(u.expires_at)).toBeGreaterThan(Date.now());
    expect(
      (
        await h.server.inject({
          method: 'PUT',
          url: u.url,
          payload: Buffer.from(image),
          headers: { ...alice.auth, 'content-type': 'application/octet-stream' },
        })
      ).statusCode,
    ).toBe(204);
    expect((await h.storage.get(`uploads/${alice.id}/${u.id}`)).equals(Buffer.from(image))).toBe(true);
  });

  it('refuses an upload that is not an image, is empty or too large, or comes without an API key', async () => {
    const { id } = (await h.server.inject({ method: 'POST', url: '/v1/uploads', headers: alice.auth })).json() as Upload;
    const put = (payload: Buffer, headers: Record<string, string> = alice.auth) =>
      h.server.inject({ method: 'PUT', url: `/v1/uploads/${id}`, payload, headers: { ...headers, 'content-type': 'image/png' } });
    expect((await put(Buffer.from('not an image at all'))).json()).toMatchObject({ code: 'NOT_AN_IMAGE' });
    expect((await put(Buffer.alloc(0))).statusCode).toBe(400);
    const big = await put(Buffer.concat([Buffer.from(image), Buffer.alloc(64 * 1024)]));
    expect(big.statusCode).toBe(413);
    expect((await put(Buffer.from(image), {})).statusCode).toBe(401);
    expect(await h.storage.head(`uploads/${alice.id}/${id}`)).toBeNull();
  });

  it('takes bytes only for an upload issued to the tenant, unused and not expired (404 otherwise)', async () => {
    const put = (id: string, auth = alice.auth) =>
      h.server.inject({ method: 'PUT', url: `/v1/uploads/${id}`, payload: Buffer.from(image), headers: { ...auth, 'content-type': 'image/png' } });
    const never = '4b0e8c1e-8f5e-4a3a-9a57-3c1e8f0d7a11';
    expect((await put(never)).json()).toMatchObject({ code: 'NOT_FOUND' });
    for (const bad of ['not-an-id', '..%2F..%2Fetc', `${never}.ticket.json`]) expect([bad, (await put(bad)).statusCode]).toEqual([bad, 400]);
    const { id } = (await h.server.inject({ method: 'POST', url: '/v1/uploads', headers: alice.auth })).json() as Upload;
    expect((await put(id, bob.auth)).statusCode).toBe(404); // alice's id is unknown to bob
    expect(await h.storage.list(`uploads/${bob.id}`)).toEqual([]);
    // used by a personalization, the upload takes no more bytes, and a create naming it again is refused
    const m = await upload(mask);
    expect((await put(id)).statusCode).toBe(204);
    expect((await create({ image: id, masks: [m], classes: ['dog'] })).statusCode).toBe(202);
    expect((await put(id)).statusCode).toBe(404);
    expect((await create({ image: id, masks: [m], classes: ['dog'] })).json()).toMatchObject({ code: 'UPLOAD_NOT_FOUND' });
    // bytes at an upload key with no ticket (as a presigned PUT to a used upload would leave) are never read
    await h.storage.put(`uploads/${alice.id}/${never}`, Buffer.from(image));
    expect((await create({ image: never, masks: [await upload(mask)], classes: ['dog'] })).json()).toMatchObject({ code: 'UPLOAD_NOT_FOUND' });
    // an expired upload URL
    const expired = h.serverWith({ presignExpiresSeconds: -60 });
    const old = (await expired.inject({ method: 'POST', url: '/v1/uploads', headers: alice.auth })).json() as Upload;
    const late = await expired.inject({ method: 'PUT', url: old.url, payload: Buffer.from(image), headers: { ...alice.auth, 'content-type': 'image/png' } });
    expect(late.statusCode).toBe(404);
    expect(late.json().message).toMatch(/expired/);
  });
});

describe('POST /v1/personalizations with a JSON body', () => {
  it('creates the personalization from uploads exactly as from multipart files, and uses the uploads up', async () => {
    const img = await upload(image),
      m = await upload(mask);
    const res = await create({ image: img, masks: [m], classes: ['dog'], phrases: ['brown checked dog'], options: { preset: 'tiny', steps: 5 } });
    expect(res.statusCode).toBe(202);
    const { id, status } = res.json() as { id: string; status: string };
    expect(status).toBe('queued');
    const prefix = `tenants/${alice.id}/personalizations/${id}`;
    expect((await h.storage.list(prefix)).map((b) => b.key).sort()).toEqual([`${prefix}/input/image.png`, `${prefix}/input/mask-0.png`]);
    expect((await h.storage.get(`${prefix}/input/image.png`)).equals(Buffer.from(image))).toBe(true);
    expect((await h.storage.get(`${prefix}/input/mask-0.png`)).equals(Buffer.from(mask))).toBe(true);
    expect(await h.db.personalizations.findById(id)).toMatchObject({
      tenantId: alice.id,
      options: { preset: 'tiny', steps: 5 },
      subjects: [{ classWord: 'dog', nounPhrase: 'brown checked dog' }],
    });
    expect(await (await h.queues.queues.augment.getJob(`personalization.augment-${id}`))?.getState()).toBe('waiting');
    expect((await h.storage.list(`uploads/${alice.id}`)).filter((b) => b.key.includes(img) || b.key.includes(m))).toEqual([]); // bytes and ticket
    // used up: naming them again is refused with a code that says why
    const again = await create({ image: img, masks: [m], classes: ['dog'] });
    expect(again.statusCode).toBe(422);
    expect(again.json()).toMatchObject({ code: 'UPLOAD_NOT_FOUND' });
  });

  it('a retry with the same Idempotency-Key replays the answer even though its uploads are used up', async () => {
    const body = { image: await upload(image), masks: [await upload(mask)], classes: 'dog' };
    const key = { ...alice.auth, 'idempotency-key': 'json-create-1' };
    const first = await create(body, key);
    expect(first.statusCode).toBe(202);
    const before = await footprint();
    const second = await create(body, key);
    expect(second.statusCode).toBe(202);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
    expect(await footprint()).toEqual(before);
    // the same key with another request is a conflict
    expect((await create({ ...body, classes: ['cat'] }, key)).json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it("another tenant's upload id is unknown, and its upload stays untouched", async () => {
    const img = await upload(image),
      m = await upload(mask);
    const res = await create({ image: img, masks: [m], classes: ['dog'] }, bob.auth);
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'UPLOAD_NOT_FOUND' });
    expect(await h.storage.head(`uploads/${alice.id}/${img}`)).not.toBeNull();
    expect(await h.storage.list(`uploads/${bob.id}`)).toEqual([]);
  });

  it("bad requests get a 4xx with the multipart form's codes, store nothing and keep the uploads for a corrected retry", async () => {
    const img = await upload(image),
      m = await upload(mask),
      wrongSize = await upload(await pngMask(16, 16));
    const cases: [unknown, number, string][] = [
      [{ masks: [m], classes: ['dog'] }, 400, 'MISSING_IMAGE'],
      [{ image: img, classes: ['dog'] }, 400, 'MISSING_MASK'],
      [{ image: img, masks: [m] }, 400, 'MISSING_CLASSES'],
      [{ image: img, masks: [m], classes: ['dog', 'cat'] }, 400, 'CLASS_COUNT_MISMATCH'],
      [{ image: img, masks: [m], classes: ['dog'], phrases: ['a dog', 'a cat'] }, 400, 'PHRASE_COUNT_MISMATCH'],
      [{ image: img, masks: [m], classes: ['dog'], phrases: 'a dog' }, 400, 'VALIDATION_ERROR'],
      [{ image: img, masks: [m], classes: ['dog'], colour: 'red' }, 400, 'UNKNOWN_FIELD'],
      [{ image: 'photo.png', masks: [m], classes: ['dog'] }, 400, 'VALIDATION_ERROR'],
      [{ image: img, masks: [m], classes: ['dog'], options: { preset: 'huge' } }, 400, 'BAD_OPTIONS'],
      [{ image: img, masks: [wrongSize], classes: ['dog'] }, 422, 'MASK_SIZE_MISMATCH'],
      [{ image: m, masks: [img], classes: ['dog'] }, 422, 'EMPTY_MASK'], // a photo as mask: nothing white
      [{ image: img, masks: [m], classes: ['dog'], webhook_url: 'http://10.0.0.1/hook' }, 400, 'BAD_WEBHOOK_URL'],
      [[img], 400, 'BAD_REQUEST'],
    ];
    const before = await footprint();
    for (const [body, status, code] of cases) {
      const res = await create(body);
      expect([JSON.stringify(body), res.statusCode, (res.json() as { code: string }).code]).toEqual([JSON.stringify(body), status, code]);
    }
    expect(await footprint()).toEqual(before);
    expect((await create({ image: img, masks: [m], classes: ['dog'] })).statusCode).toBe(202);
  });

  it('an upload id that is not a UUID is a VALIDATION_ERROR, as on every other route; one in upper case is the same upload', async () => {
    const bad = await h.server.inject({
      method: 'PUT',
      url: '/v1/uploads/not-an-id',
      payload: Buffer.from(image),
      headers: { ...alice.auth, 'content-type': 'image/png' },
    });
    expect([bad.statusCode, (bad.json() as { code: string }).code]).toEqual([400, 'VALIDATION_ERROR']);
    const { id } = (await h.server.inject({ method: 'POST', url: '/v1/uploads', headers: alice.auth })).json() as Upload;
    const put = await h.server.inject({
      method: 'PUT',
      url: `/v1/uploads/${id.toUpperCase()}`,
      payload: Buffer.from(image),
      headers: { ...alice.auth, 'content-type': 'image/png' },
    });
    expect(put.statusCode).toBe(204);
    const m = await upload(mask);
    expect((await create({ image: id.toUpperCase(), masks: [m], classes: ['dog'] })).statusCode).toBe(202);
  });

  it('a body that is neither multipart nor JSON is refused as an unsupported media type', async () => {
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/personalizations',
      payload: 'image=x',
      headers: { ...alice.auth, 'content-type': 'text/plain' },
    });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('the OpenAPI document describes both request bodies and the upload endpoints', async () => {
    const doc = (await h.server.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { required?: string[] } }> } }>>;
    };
    const content = doc.paths['/v1/personalizations']!.post!.requestBody!.content;
    expect(Object.keys(content).sort()).toEqual(['application/json', 'multipart/form-data']);
    expect(content['application/json']!.schema.required).toEqual(['image', 'masks', 'classes']);
    expect(doc.paths['/v1/uploads']?.post).toBeDefined();
    expect(doc.paths['/v1/uploads/{id}']?.put).toBeDefined();
  });
});
