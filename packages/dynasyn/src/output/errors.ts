/**
 * Errors about a personalization's output directory and the evaluation models: `code` is stable (the CLI
 * and API map it), `message` names the file and what was expected.
 */
export type ArtifactErrorCode =
  /** A file the operation needs is not in the output directory (or model folder). */
  | 'MISSING_ARTIFACT'
  /** A file is there but malformed (not JSON, wrong fields, wrong tensor shapes). */
  | 'BAD_ARTIFACT'
  /** Files disagree with each other or with the backbone (tokens, shapes, fingerprint). */
  | 'ARTIFACT_MISMATCH'
  /** An evaluation model (CLIP) cannot be loaded or lacks the inputs/outputs it needs. */
  | 'BAD_MODEL';

export class ArtifactError extends Error {
  readonly code: ArtifactErrorCode;

  constructor(code: ArtifactErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ArtifactError';
    this.code = code;
  }
}

export const isArtifactError = (e: unknown, code?: ArtifactErrorCode): e is ArtifactError =>
  e instanceof ArtifactError && (code === undefined || e.code === code);
