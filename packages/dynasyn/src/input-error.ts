/**
 * Errors about what a user hands to personalization (image, masks, class words, options). `code` is stable
 * (the CLI and API map it to a message or a 400); `message` names the culprit (file, subject, option). Every
 * one is permanent: the same input fails the same way on every retry.
 */
import { CodedError, errorGuard, type ErrorCodes } from '@dynasyn/domain';

export const INPUT_CODES = {
  /** The image cannot be read or decoded. */
  UNREADABLE_IMAGE: { permanent: true },
  /** A mask cannot be read or decoded. */
  UNREADABLE_MASK: { permanent: true },
  /** No subject, or more subjects than placeholder slots. */
  SUBJECT_COUNT: { permanent: true },
  /** A mask's size differs from the image's. */
  MASK_SIZE_MISMATCH: { permanent: true },
  /** A mask selects no pixel (before or after fitting to the backbone size). */
  EMPTY_MASK: { permanent: true },
  /** A mask covers (nearly) the whole image: there is no background to tell the subject from. */
  MASK_COVERS_IMAGE: { permanent: true },
  /** Two masks are (nearly) the same region: their placeholders cannot be told apart. */
  MASKS_OVERLAP: { permanent: true },
  /** A class word or noun phrase the tokenizer cannot encode (empty, unknown tokens, placeholder syntax). */
  BAD_CLASS_WORD: { permanent: true },
  /** An option is out of range or inconsistent with the others. */
  BAD_OPTION: { permanent: true },
} as const satisfies ErrorCodes;
export type InputErrorCode = keyof typeof INPUT_CODES;

export class InputError extends CodedError<InputErrorCode> {
  static override readonly codes = INPUT_CODES;
}

export const isInputError = errorGuard(InputError);
