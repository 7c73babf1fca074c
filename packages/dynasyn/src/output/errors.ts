/**
 * Errors about a personalization's output directory and the evaluation models: `code` is stable (the CLI
 * and API map it), `message` names the file and what was expected. `permanent`: no retry helps.
 */
import { CodedError, errorGuard, type ErrorCodes } from '@dynasyn/domain';

export const ARTIFACT_CODES = {
  /** A file the operation needs is not in the output directory (or model folder). */
  MISSING_ARTIFACT: { permanent: false },
  /** A file is there but malformed (not JSON, wrong fields, wrong tensor shapes). */
  BAD_ARTIFACT: { permanent: true },
  /** Files disagree with each other or with the backbone (tokens, shapes, fingerprint). */
  ARTIFACT_MISMATCH: { permanent: true },
  /** An evaluation model (CLIP) cannot be loaded or lacks the inputs/outputs it needs. */
  BAD_MODEL: { permanent: true },
} as const satisfies ErrorCodes;
export type ArtifactErrorCode = keyof typeof ARTIFACT_CODES;

export class ArtifactError extends CodedError<ArtifactErrorCode> {
  static override readonly codes = ARTIFACT_CODES;
}

export const isArtifactError = errorGuard(ArtifactError);
