import { CodedError, errorGuard, type ErrorCodes } from '@dynasyn/domain';

export const TOYWORLD_CODES = {
  /** A scene spec that does not validate: the message names each bad field. */
  BAD_SPEC: { permanent: true },
  /** A bad argument to the API or the CLI (size, count, a held-out mode that cannot be met). */
  BAD_ARGUMENT: { permanent: true },
} as const satisfies ErrorCodes;

export class ToyworldError extends CodedError<keyof typeof TOYWORLD_CODES> {
  static override readonly codes = TOYWORLD_CODES;
}

export const isToyworldError = errorGuard(ToyworldError);
