/** `dynasyn evaluate`: the paper's comparison (methods x scenes x seeds, per prompt category) on a backbone. */
export { EvaluationError, isEvaluationError, EVALUATION_CODES, type EvaluationErrorCode } from './errors.js';
export {
  CATEGORIES,
  loadProtocol,
  parseProtocol,
  promptProblem,
  promptSubjects,
  protocolSchema,
  type Category,
  type Protocol,
  type ProtocolJson,
} from './protocol.js';
export { METHOD_IDS, METHODS, methodOptions, mergeOverrides, UNET_FULL_TENSORS, type MethodDefinition, type MethodId } from './methods.js';
export { buildTables, cellOf, mean, sampleStd, seedValue, type CategoryTable, type Cell, type RunRecord, type SampleScore } from './aggregate.js';
export { readLedger, appendLedger, LEDGER_FILE } from './ledger.js';
export { classPriorPrompts, writeClassPriorSet } from './prior.js';
export {
  CLIP_METRICS,
  JUDGE_METRICS,
  createClipScorer,
  createJudgeScorer,
  type MetricInfo,
  type ScoredSample,
  type Scorer,
  type ScoringContext,
} from './scorers.js';
export {
  attributesKept,
  identityAccuracy,
  judgeSamples,
  loadToyworldJudge,
  promptAccuracy,
  type AskedLabels,
  type JudgedSample,
  type JudgeScores,
  type ToyworldJudge,
} from './judge.js';
export { resolveScene, type ResolvedScene, type SubjectIdentity } from './scenes.js';
export { formatCell, resultsMarkdown, type EvaluationResults } from './results.js';
export { checkProtocolInputs, runEvaluation, runOptions, runPrompts, sampleSeed, type EvaluateRequest, type EvaluationProgress } from './run.js';
