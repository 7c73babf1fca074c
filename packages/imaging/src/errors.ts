/** Stable codes for everything packages/imaging refuses; callers map them (e.g. the API to 4xx). */
import { CodedError, type ErrorCodes } from '@dynasyn/domain';

export const IMAGING_CODES = {
  NOT_AN_IMAGE: { permanent: true }, // bytes are not PNG, JPEG or WebP (by magic bytes)
  CORRUPT_IMAGE: { permanent: true }, // the type was recognised but the decoder failed
  TOO_LARGE: { permanent: false }, // width x height exceeds the caller's pixel limit
  SIZE_MISMATCH: { permanent: false }, // two rasters that must share a size do not
  EMPTY_MASK: { permanent: true }, // an operation needs at least one set pixel
  BAD_ARGUMENT: { permanent: true }, // any other invalid parameter (negative radius, zero size, bad tensor shape...)
} as const satisfies ErrorCodes;
export type ImagingErrorCode = keyof typeof IMAGING_CODES;

export class ImagingError extends CodedError<ImagingErrorCode> {
  static override readonly codes = IMAGING_CODES;
}
