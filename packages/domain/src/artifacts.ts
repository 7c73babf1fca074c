/** What a stored blob of a personalization is (`Artifact.kind`; the API lists artifacts by it). */
import { z } from 'zod';

export const ARTIFACT_KINDS = ['image', 'mask', 'augmented', 'embeddings', 'adapters', 'checkpoint', 'sample', 'report', 'metrics', 'manifest'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];
export const artifactKindSchema = z.enum(ARTIFACT_KINDS);
