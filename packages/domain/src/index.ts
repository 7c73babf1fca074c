export {
  PERSONALIZATION_STATUSES,
  RUNNING_ORDER,
  TERMINAL_STATUSES,
  SAMPLE_STATUSES,
  WEBHOOK_DELIVERY_STATUSES,
  personalizationStatusSchema,
  sampleStatusSchema,
  isTerminal,
  canTransition,
  statusesLeadingTo,
  type PersonalizationStatus,
  type SampleStatus,
  type WebhookDeliveryStatus,
} from './status.js';
export { STAGE_NAMES, stageSchema, stageProgressSchema, type Stage, type StageProgress } from './progress.js';
export { ARTIFACT_KINDS, artifactKindSchema, type ArtifactKind } from './artifacts.js';
export { MAX_PLACEHOLDER_VECTORS, PRESET_NAMES, personalizationOptionsSchema, type PresetName, type PersonalizationOptions } from './options.js';
export { CodedError, errorGuard, isCodedError, type CodeInfo, type ErrorCodes } from './coded-error.js';
export { cleanUp, withCleanup, type WithSuppressed } from './cleanup.js';
export { describeRange, numberOption, parseNumber, type NumberRange } from './numbers.js';
export { DEBUG_HINT, debugFromEnv, formatFailure, oneLine, runCommand } from './cli-failure.js';
