/**
 * Errors about what a user hands to personalization (image, masks, class words, options). `code` is stable
 * (the CLI and API map it to a message or a 400); `message` names the culprit (file, subject, option).
 */
export type InputErrorCode =
  /** The image cannot be read or decoded. */
  | 'UNREADABLE_IMAGE'
  /** A mask cannot be read or decoded. */
  | 'UNREADABLE_MASK'
  /** No subject, or more subjects than placeholder slots. */
  | 'SUBJECT_COUNT'
  /** A mask's size differs from the image's. */
  | 'MASK_SIZE_MISMATCH'
  /** A mask selects no pixel (before or after fitting to the backbone size). */
  | 'EMPTY_MASK'
  /** A mask covers (nearly) the whole image: there is no background to tell the subject from. */
  | 'MASK_COVERS_IMAGE'
  /** Two masks are (nearly) the same region: their placeholders cannot be told apart. */
  | 'MASKS_OVERLAP'
  /** A class word or noun phrase the tokenizer cannot encode (empty, unknown tokens, placeholder syntax). */
  | 'BAD_CLASS_WORD'
  /** An option is out of range or inconsistent with the others. */
  | 'BAD_OPTION';

export class InputError extends Error {
  readonly code: InputErrorCode;

  constructor(code: InputErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InputError';
    this.code = code;
  }
}

export const isInputError = (e: unknown, code?: InputErrorCode): e is InputError =>
  e instanceof InputError && (code === undefined || e.code === code);
