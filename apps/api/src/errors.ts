/**
 * Every refusal the API makes, with a stable `code` clients can switch on. The error handler (plugins/errors.ts)
 * turns them into `{code, message}` with their status; anything else becomes a 500 with no details.
 */
import createError from '@fastify/error';

export const Unauthorized = createError('UNAUTHORIZED', 'missing or unknown API key (Authorization: Bearer <key>)', 401);
export const NotFound = createError('NOT_FOUND', '%s not found', 404);
/** A request that cannot be read as one (malformed JSON, a body that is not an object, a bad header). */
export const BadRequest = createError('BAD_REQUEST', '%s', 400);
/** A readable request with a parameter or field out of its schema: Fastify's own schema errors carry this code too. */
export const ValidationError = createError('VALIDATION_ERROR', '%s', 400);
export const MissingImage = createError('MISSING_IMAGE', 'the field "image" (a file, or an upload id in a JSON body) is required', 400);
export const MissingMask = createError(
  'MISSING_MASK',
  'at least one mask is required (a multipart file "mask" per subject, or "masks": [upload ids] in a JSON body)',
  400,
);
export const MissingClasses = createError('MISSING_CLASSES', 'the field "classes" (comma-separated class words, one per mask) is required', 400);
export const ClassCountMismatch = createError('CLASS_COUNT_MISMATCH', '%s', 400);
export const PhraseCountMismatch = createError('PHRASE_COUNT_MISMATCH', '%s', 400);
export const BadPhrase = createError('BAD_PHRASE', '%s', 400);
export const TooManySubjects = createError('TOO_MANY_SUBJECTS', '%s', 400);
export const UnknownField = createError('UNKNOWN_FIELD', 'unknown field "%s"', 400);
export const UnsupportedMediaType = createError('UNSUPPORTED_MEDIA_TYPE', '%s', 415);
export const UploadNotFound = createError('UPLOAD_NOT_FOUND', '%s', 422);
export const EmptyUpload = createError('EMPTY_UPLOAD', 'the upload body is empty', 400);
export const BadOptions = createError('BAD_OPTIONS', 'options: %s', 400);
export const BadWebhookUrl = createError('BAD_WEBHOOK_URL', 'webhook_url: %s', 400);
export const NotAnImage = createError('NOT_AN_IMAGE', '%s', 415);
export const CorruptImage = createError('CORRUPT_IMAGE', '%s', 400);
export const ImageTooLarge = createError('IMAGE_TOO_LARGE', '%s', 413);
export const FileTooLarge = createError('FILE_TOO_LARGE', '%s', 413);
export const MaskSizeMismatch = createError('MASK_SIZE_MISMATCH', '%s', 422);
export const EmptyMask = createError('EMPTY_MASK', '%s', 422);
export const MaskCoversImage = createError('MASK_COVERS_IMAGE', '%s', 422);
export const MasksOverlap = createError('MASKS_OVERLAP', '%s', 422);
export const BadClassWord = createError('BAD_CLASS_WORD', '%s', 400);
export const BadPrompt = createError('BAD_PROMPT', '%s', 400);
export const IdempotencyKeyReused = createError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request', 409);
export const NotSucceeded = createError('NOT_SUCCEEDED', 'personalization %s is %s; samples need a succeeded one', 409);
export const AlreadyFinished = createError('ALREADY_FINISHED', 'personalization %s already %s', 409);
