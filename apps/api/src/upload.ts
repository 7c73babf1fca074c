/**
 * Reading and checking a personalization upload before anything is stored: every refusal happens here, so a
 * refused request leaves no row and no blob behind.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { personalizationOptionsSchema, type PersonalizationOptions } from '@dynasyn/domain';
import { isInputError, validatePersonalizationInput, type InputError } from '@dynasyn/dynasyn/inputs';
import { decode, decodeMask, ImagingError, sniffImageType, type Mask } from '@dynasyn/imaging';
import { isStorageError, type BlobStore } from '@dynasyn/storage';
import * as E from './errors.js';

export interface UploadLimits {
  maxUploadBytes: number;
  maxImagePixels: number;
  maxSubjects: number;
}

export interface UploadFile {
  bytes: Buffer;
  contentType: string;
  extension: string;
}

export interface PersonalizationUpload {
  image: UploadFile;
  masks: UploadFile[];
  classes: string[];
  /** Noun phrases, one per mask in the same order (`orange striped cat with a bow`), or none: []. */
  phrases: string[];
  options: PersonalizationOptions;
  webhookUrl: string | null;
  /** sha256 over every part, for Idempotency-Key comparisons. */
  requestHash: string;
}

/** Reads every multipart part into memory (bounded by the multipart limits), then checks the whole request. */
/** The parts as received, before the images are checked. */
export interface RawUpload extends Omit<PersonalizationUpload, 'image' | 'masks'> {
  image: Buffer | null;
  masks: Buffer[];
}

export async function readUpload(request: FastifyRequest, limits: UploadLimits): Promise<RawUpload> {
  let image: Buffer | null = null;
  const masks: Buffer[] = [];
  const phrases: string[] = [];
  const fields = new Map<string, string>();
  const hash = createHash('sha256');
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      if (part.fieldname !== 'image' && part.fieldname !== 'mask') {
        part.file.resume();
        throw new E.UnknownField(part.fieldname);
      }
      const bytes = await part.toBuffer();
      if (part.file.truncated) throw new E.FileTooLarge(`${part.fieldname} exceeds ${limits.maxUploadBytes} bytes`);
      if (part.fieldname === 'image') {
        if (image) throw new E.BadRequest('only one "image" file is accepted');
        image = bytes;
      } else {
        if (masks.length >= limits.maxSubjects) {
          throw new E.TooManySubjects(`at most ${limits.maxSubjects} masks (subjects) are accepted`);
        }
        masks.push(bytes);
      }
      hash.update(`${part.fieldname}:${bytes.length}:`).update(bytes);
    } else if (part.fieldname === 'phrase') {
      // repeated like `mask`, in subject order (a phrase may hold commas, which `classes` splits on)
      if (phrases.length >= limits.maxSubjects) throw new E.TooManySubjects(`at most ${limits.maxSubjects} phrases (one per mask) are accepted`);
      phrases.push(String(part.value));
      hash.update(`phrase=${JSON.stringify(String(part.value))};`);
    } else {
      if (!['classes', 'options', 'webhook_url'].includes(part.fieldname)) throw new E.UnknownField(part.fieldname);
      fields.set(part.fieldname, String(part.value));
    }
  }
  for (const name of ['classes', 'options', 'webhook_url']) hash.update(`${name}=${fields.get(name) ?? ''};`);
  return {
    image,
    masks,
    classes: parseClasses(fields.get('classes')),
    phrases: checkPhraseList(phrases),
    options: parseOptions(fields.get('options')),
    webhookUrl: fields.get('webhook_url')?.trim() || null,
    requestHash: hash.digest('hex'),
  };
}

function parseClasses(raw: string | undefined): string[] {
  return checkClassList((raw ?? '').split(','));
}

/** Trimmed class words; none at all is [] (MISSING_CLASSES later), a blank one among others is refused. */
function checkClassList(list: string[]): string[] {
  const classes = list.map((c) => c.trim());
  if (classes.every((c) => c === '')) return [];
  if (classes.some((c) => c === '')) throw new E.MissingClasses();
  for (const c of classes) if (c.length > 100) throw new E.BadClassWord(`class "${c.slice(0, 20)}..." is longer than 100 characters`);
  return classes;
}

/** Longest noun phrase accepted (the backbone's tokenizer decides later what fits in a prompt). */
export const MAX_PHRASE_LENGTH = 200;

/** Trimmed noun phrases; a blank or overlong one is refused (no phrases at all is fine: []). */
function checkPhraseList(list: string[]): string[] {
  const phrases = list.map((p) => p.trim());
  if (phrases.some((p) => p === '')) throw new E.BadPhrase('a phrase is blank: give one non-empty phrase per mask, or none');
  for (const p of phrases)
    if (p.length > MAX_PHRASE_LENGTH) throw new E.BadPhrase(`phrase "${p.slice(0, 20)}..." is longer than ${MAX_PHRASE_LENGTH} characters`);
  return phrases;
}

function parseOptions(raw: string | undefined): PersonalizationOptions {
  if (raw === undefined || raw.trim() === '') return {};
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new E.BadOptions('not valid JSON');
  }
  return checkOptions(json);
}

function checkOptions(json: unknown): PersonalizationOptions {
  const parsed = personalizationOptionsSchema.safeParse(json);
  if (!parsed.success) {
    throw new E.BadOptions(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  }
  return parsed.data;
}

/**
 * The JSON form of a create request: the images were PUT beforehand to the URLs `POST /v1/uploads` handed
 * out, and are named here by their upload ids.
 */
export interface JsonCreateRequest {
  image: string;
  masks: string[];
  classes: string[];
  phrases: string[];
  options: PersonalizationOptions;
  webhookUrl: string | null;
  /** sha256 of the request's fields (ids, not bytes: an upload is consumed by the personalization that uses it). */
  requestHash: string;
}

const JSON_FIELDS = ['image', 'masks', 'classes', 'phrases', 'options', 'webhook_url'];
/** An upload id (and any other UUID the API issues). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Checks a JSON create body's shape, with the same error codes as the multipart form. */
export function parseJsonCreate(body: unknown, limits: UploadLimits): JsonCreateRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new E.BadRequest('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!JSON_FIELDS.includes(k)) throw new E.UnknownField(k);
  const id = (v: unknown, what: string): string => {
    if (typeof v !== 'string' || !UUID.test(v)) throw new E.ValidationError(`${what} must be an upload id (the "id" POST /v1/uploads returned)`);
    return v.toLowerCase();
  };
  if (b.image === undefined || b.image === null) throw new E.MissingImage();
  const image = id(b.image, 'image');
  if (b.masks === undefined || b.masks === null || (Array.isArray(b.masks) && b.masks.length === 0)) throw new E.MissingMask();
  if (!Array.isArray(b.masks)) throw new E.ValidationError('masks must be an array of upload ids, one per subject');
  if (b.masks.length > limits.maxSubjects) throw new E.TooManySubjects(`at most ${limits.maxSubjects} masks (subjects) are accepted`);
  const masks = b.masks.map((m, i) => id(m, `masks[${i}]`));
  let classes: string[];
  if (Array.isArray(b.classes)) {
    if (b.classes.some((c) => typeof c !== 'string')) throw new E.ValidationError('classes must be strings');
    classes = checkClassList(b.classes as string[]);
  } else if (typeof b.classes === 'string' || b.classes === undefined || b.classes === null) classes = parseClasses(b.classes ?? undefined);
  else throw new E.ValidationError('classes must be an array of class words (or one comma-separated string)');
  if (b.webhook_url !== undefined && b.webhook_url !== null && typeof b.webhook_url !== 'string') throw new E.ValidationError('webhook_url must be a string');
  let phrases: string[] = [];
  if (b.phrases !== undefined && b.phrases !== null) {
    if (!Array.isArray(b.phrases) || b.phrases.some((p) => typeof p !== 'string'))
      throw new E.ValidationError('phrases must be an array of strings, one noun phrase per mask');
    if (b.phrases.length > limits.maxSubjects) throw new E.TooManySubjects(`at most ${limits.maxSubjects} phrases (one per mask) are accepted`);
    phrases = checkPhraseList(b.phrases as string[]);
  }
  const options = b.options === undefined || b.options === null ? {} : checkOptions(b.options);
  const webhookUrl = typeof b.webhook_url === 'string' && b.webhook_url.trim() ? b.webhook_url.trim() : null;
  const requestHash = createHash('sha256')
    .update(JSON.stringify({ json: 1, image, masks, classes, ...(phrases.length ? { phrases } : {}), options, webhookUrl }))
    .digest('hex');
  return { image, masks, classes, phrases, options, webhookUrl, requestHash };
}

/** Where an upload's bytes live: `uploads/<tenant>/<id>`, one prefix for every tenant (one S3 lifecycle rule expires them all). */
export const uploadKey = (tenantId: string, id: string) => `uploads/${tenantId}/${id.toLowerCase()}`;

/**
 * The record that an upload was issued to this tenant and is unused: written by `POST /v1/uploads`, removed
 * when a personalization uses the upload. A PUT through the API and a create both require it, so ids never
 * issued, another tenant's, or already used are refused (a presigned S3 PUT cannot be stopped, but bytes it
 * writes to a used upload are never read).
 */
export const uploadTicketKey = (tenantId: string, id: string) => `${uploadKey(tenantId, id)}.ticket.json`;

export interface UploadTicket {
  expiresAt: string;
}

/** The ticket of an issued, unused upload; null otherwise. */
export async function readUploadTicket(storage: BlobStore, tenantId: string, id: string): Promise<UploadTicket | null> {
  try {
    return JSON.parse((await storage.get(uploadTicketKey(tenantId, id))).toString('utf8')) as UploadTicket;
  } catch (err) {
    if (isStorageError(err) && err.code === 'NOT_FOUND') return null;
    throw err;
  }
}

/** Removes a used upload: its bytes and its ticket. */
export async function removeUpload(storage: BlobStore, tenantId: string, id: string): Promise<void> {
  await storage.delete(uploadTicketKey(tenantId, id));
  await storage.delete(uploadKey(tenantId, id));
}

/** Reads the uploads a JSON create request names (each must exist and fit the upload limit). */
export async function readJsonUploads(storage: BlobStore, tenantId: string, req: JsonCreateRequest, limits: UploadLimits): Promise<RawUpload> {
  const read = async (uploadId: string, what: string): Promise<Buffer> => {
    const key = uploadKey(tenantId, uploadId);
    const info = (await readUploadTicket(storage, tenantId, uploadId)) ? await storage.head(key) : null;
    if (!info) throw new E.UploadNotFound(`${what}: no upload ${uploadId} (PUT the bytes to the url POST /v1/uploads returned first; an upload is used once)`);
    if (info.size > limits.maxUploadBytes)
      throw new E.FileTooLarge(`${what} (upload ${uploadId}) is ${info.size} bytes; the limit is ${limits.maxUploadBytes}`);
    try {
      return await storage.get(key);
    } catch (err) {
      // used up by a concurrent create between the two reads
      if (isStorageError(err) && err.code === 'NOT_FOUND') throw new E.UploadNotFound(`${what}: upload ${uploadId} is gone (an upload is used once)`);
      throw err;
    }
  };
  const image = await read(req.image, 'image');
  const masks: Buffer[] = [];
  for (const [i, m] of req.masks.entries()) masks.push(await read(m, `mask ${i + 1}`));
  return { image, masks, classes: req.classes, phrases: req.phrases, options: req.options, webhookUrl: req.webhookUrl, requestHash: req.requestHash };
}

/** The MIME type of each image type `sniffImageType` recognises. */
export const IMAGE_CONTENT_TYPES = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' } as const;

/**
 * Sniffs and decodes (pixel limit checked from the header first) image and masks, then runs the pipeline's own
 * input validation (packages/dynasyn validatePersonalizationInput: mask sizes, empty, whole-image and
 * near-identical masks, class words, the prompts' placeholders), so a worker never refuses what was accepted.
 */
export async function validateUpload(raw: RawUpload, limits: UploadLimits): Promise<PersonalizationUpload> {
  if (!raw.image) throw new E.MissingImage();
  if (raw.masks.length === 0) throw new E.MissingMask();
  if (raw.classes.length === 0) throw new E.MissingClasses();
  if (raw.classes.length !== raw.masks.length) {
    throw new E.ClassCountMismatch(`${raw.classes.length} class(es) for ${raw.masks.length} mask(s); give one class per mask, in the same order`);
  }
  if (raw.phrases.length && raw.phrases.length !== raw.masks.length) {
    throw new E.PhraseCountMismatch(
      `${raw.phrases.length} phrase(s) for ${raw.masks.length} mask(s); give one noun phrase per mask, in the same order, or none`,
    );
  }
  const image = await checked('image', () => decode(raw.image!, { maxPixels: limits.maxImagePixels }));
  const masks: Mask[] = [];
  for (const [i, bytes] of raw.masks.entries()) {
    masks.push(await checked(`mask ${i + 1} (${raw.classes[i]})`, () => decodeMask(bytes, { maxPixels: limits.maxImagePixels })));
  }
  try {
    validatePersonalizationInput(
      {
        image,
        subjects: masks.map((mask, i) => ({ mask, classWord: raw.classes[i]!, ...(raw.phrases.length ? { nounPhrase: raw.phrases[i]! } : {}) })),
        ...(raw.options.prompts ? { prompts: raw.options.prompts } : {}),
      },
      { maxSubjects: limits.maxSubjects, names: masks.map((_, i) => `mask ${i + 1}`), imageName: 'the image' },
    );
  } catch (e) {
    if (isInputError(e)) throw refusalOf(e);
    throw e;
  }
  return { ...raw, image: asFile(raw.image), masks: raw.masks.map(asFile) };
}

/** The API's refusal for the pipeline's input error (the same code where the API has one). */
function refusalOf(e: InputError): Error {
  switch (e.code) {
    case 'MASK_SIZE_MISMATCH':
      return new E.MaskSizeMismatch(e.message);
    case 'EMPTY_MASK':
      return new E.EmptyMask(e.message);
    case 'MASK_COVERS_IMAGE':
      return new E.MaskCoversImage(e.message);
    case 'MASKS_OVERLAP':
      return new E.MasksOverlap(e.message);
    case 'BAD_CLASS_WORD':
      return new E.BadClassWord(e.message);
    case 'SUBJECT_COUNT':
      return new E.TooManySubjects(e.message);
    case 'BAD_OPTION': // only the prompts' placeholders reach here: every other option is checked by the schema
      return new E.BadOptions(e.message);
    case 'UNREADABLE_IMAGE':
    case 'UNREADABLE_MASK':
      return new E.CorruptImage(e.message);
  }
}

function asFile(bytes: Buffer): UploadFile {
  const type = sniffImageType(bytes) ?? 'png';
  return { bytes, contentType: IMAGE_CONTENT_TYPES[type], extension: type === 'jpeg' ? 'jpg' : type };
}

async function checked<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof ImagingError)) throw e;
    switch (e.code) {
      case 'NOT_AN_IMAGE':
        throw new E.NotAnImage(`${name} is not a PNG, JPEG or WebP image`);
      case 'TOO_LARGE':
        throw new E.ImageTooLarge(`${name}: ${e.message}`);
      default:
        throw new E.CorruptImage(`${name} cannot be decoded: ${e.message}`);
    }
  }
}
