export * from './ports.js';
export { classify, PermanentStageError, StageCanceled, StageSuperseded } from './errors.js';
export { openRunDir, personalizationRoot, removeRunDir, runPrefix, storedPhases, uploadFile, uploadFolder, type RunDir } from './run-dir.js';
export {
  attemptDeps,
  cancelWatcher,
  failPersonalization,
  progressWriter,
  purgeIfDeleted,
  runStage,
  stageOptions,
  type StageCall,
  type StageRunContext,
  type StageSpec,
} from './lifecycle.js';
export * from './handlers/index.js';
export { jobOptions, stageDbFrom } from './db-adapter.js';
export { parseWorkerEnv, workerEnvSchema, type WorkerEnv } from './worker-env.js';
export {
  currentStage,
  reconcileOnce,
  RECONCILER_LOCK_ID,
  startReconciler,
  type ReconcileOptions,
  type ReconcileReport,
  type Reconciler,
  type ReconcilerPorts,
} from './reconciler.js';
export { localModelDir, resolveBackbone, type BackboneSource, type ModelStore } from './backbone.js';
export { resolveClipModel, type ClipModelSource } from './clip-model.js';
export { resolveJudgeModel, type JudgeModelSource } from './judge-model.js';
export {
  closeOnSignals,
  queueWorkerOptions,
  stageLockMs,
  stageLeaseMs,
  stageDepsOf,
  startWorkerProcess,
  startWorkers,
  WORKER_NAMES,
  type StartWorkersOptions,
  type WorkerName,
  type WorkerProcess,
} from './worker-process.js';
