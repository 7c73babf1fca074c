/** Stable codes for everything packages/imaging refuses; callers map them (e.g. the API to 4xx). */
export type ImagingErrorCode =
  | 'NOT_AN_IMAGE' // bytes are not PNG, JPEG or WebP (by magic bytes)
  | 'CORRUPT_IMAGE' // the type was recognised but the decoder failed
  | 'TOO_LARGE' // width x height exceeds the caller's pixel limit
  | 'SIZE_MISMATCH' // two rasters that must share a size do not
  | 'EMPTY_MASK' // an operation needs at least one set pixel
  | 'BAD_ARGUMENT'; // any other invalid parameter (negative radius, zero size, bad tensor shape...)

export class ImagingError extends Error {
  override readonly name = 'ImagingError';
  constructor(
    readonly code: ImagingErrorCode,
    message: string,
  ) {
    super(message);
  }
}
