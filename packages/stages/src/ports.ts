/**
 * What a stage needs from the outside, as small interfaces handed in (STYLE.md): the apps implement them over
 * packages/db and packages/storage (`stageDbFrom`, the BlobStore itself); tests pass the real ones too.
 */
import type { ArtifactKind, PersonalizationStatus, SampleStatus, StageProgress } from '@dynasyn/domain';
import type { DynasynOptions } from '@dynasyn/dynasyn';
import type { NotifyPorts } from '@dynasyn/webhooks';
import type { ArtifactInput } from '@dynasyn/db';

export type { ArtifactKind, PersonalizationStatus, StageProgress } from '@dynasyn/domain';

/** A personalization as the stages read it. */
export interface PersonalizationJob {
  id: string;
  tenantId: string;
  status: PersonalizationStatus;
  /** Storage key of the uploaded image. */
  imageKey: string;
  /** One per subject, in placeholder order. */
  subjects: { classWord: string; nounPhrase?: string; maskKey: string }[];
  /** Resolved options (presets.ts resolveOptions of what the API stored). */
  options: DynasynOptions;
  webhookUrl: string | null;
  cancelRequested: boolean;
  /** Fencing token of its stage attempts (packages/db fence.ts): a stage job runs for the epoch it was enqueued with. */
  epoch: number;
}

/** The attempt a stage's writes belong to: a personalization's stage job, or a sample request's job (packages/db `Fence`). */
export type StageFence = { personalizationId: string; epoch: number } | { requestId: string; epoch: number };

/** What a running stage polls: a cancel asked, and whose attempt it is now. */
export interface RunState {
  cancelRequested: boolean;
  epoch: number;
}

/** A stored blob as the artifacts repository records it (one definition: packages/db). */
export type ArtifactRow = ArtifactInput;

export interface SampleJobRow {
  id: string;
  personalizationId: string;
  prompt: string;
  seed: number;
  status: SampleStatus;
  /** steps, guidance, scheduler overrides. */
  settings: { steps?: number; guidance?: number; scheduler?: 'ddim' | 'euler' | 'ddpm' };
}

/** The system of record, as the stages use it. */
export interface StageDb extends NotifyPorts {
  getPersonalization(id: string): Promise<PersonalizationJob | undefined>;
  /** Sets the status (and startedAt/finishedAt as fits); `error` goes with `failed`. */
  /** `metrics`: a summary for the personalization's `metrics` field (kept when absent). */
  setStatus(id: string, status: PersonalizationStatus, error?: { code: string; message: string }, metrics?: unknown): Promise<void>;
  /** Replaces this stage's entry of the per-stage progress list. */
  setProgress(id: string, p: StageProgress): Promise<void>;
  isCancelRequested(id: string): Promise<boolean>;
  /** Cancel and epoch of a personalization; undefined when its row is gone. */
  getRunState(id: string): Promise<RunState | undefined>;
  /** The epoch of a sample request's job (its rows'); undefined when it has no rows. */
  getRequestEpoch(requestId: string): Promise<number | undefined>;
  /**
   * This db for one stage attempt: each write (status, progress, artifact, samples, webhook event) is made only
   * while the attempt's epoch holds, in the same transaction as the check, and is refused with `StageSuperseded`
   * once the reconciler took the work over. `check()` refuses the same way and writes nothing else: a stage calls
   * it before storing a blob, which no SQL statement can fence.
   */
  fenced(fence: StageFence): FencedStageDb;
  /** Upsert on (personalizationId, key): recording twice leaves one row. */
  recordArtifact(a: ArtifactRow): Promise<void>;
  /** The Sample rows of one request, in request order. */
  getRequestSamples(requestId: string): Promise<SampleJobRow[]>;
  /** Stores finished samples as the rows of `requestId`, replacing what an earlier run of the same request stored. */
  saveSamples(s: {
    tenantId: string;
    personalizationId: string;
    requestId: string;
    /** `metrics`: the sample's CLIP-T / CLIP-I, when the stage scored it. */
    items: { prompt: string; seed: number; settings: SampleJobRow['settings']; artifactKey: string; metrics?: unknown }[];
  }): Promise<void>;
  updateSample(
    id: string,
    patch: { status: SampleJobRow['status']; artifactKey?: string; metrics?: unknown; error?: { code: string; message: string } },
  ): Promise<void>;
}

/** A StageDb whose writes belong to one stage attempt (`StageDb.fenced`). */
export interface FencedStageDb extends StageDb {
  readonly fence: StageFence;
  /** Throws StageSuperseded when the attempt was taken over; otherwise records a sign of its progress. */
  check(): Promise<void>;
}

/** What a stage needs of packages/storage's BlobStore (a structural subset). */
export interface StageBlobs {
  get(key: string): Promise<Uint8Array>;
  head(key: string): Promise<{ key: string; size: number; sha256: string } | null>;
  list(prefix: string): Promise<{ key: string; size: number; sha256: string; contentType: string }[]>;
  put(key: string, body: Uint8Array, opts?: { contentType?: string }): Promise<{ key: string; size: number; sha256: string; contentType: string }>;
  downloadPrefix(prefix: string, dir: string): Promise<void>;
  uploadDir(dir: string, prefix: string): Promise<{ key: string; size: number; sha256: string; contentType: string }[]>;
  /** Removes every object under `prefix`; returns how many. */
  deletePrefix(prefix: string): Promise<number>;
}

/** Log lines with context; pino's Logger fits. */
export interface StageLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Everything a stage handler is built from. */
export interface StageDeps {
  db: StageDb;
  storage: StageBlobs;
  /** A local model bundle directory. */
  backbone: string;
  /** A local CLIP folder (resolveClipModel): the sample stage scores its samples with it. Unset: no scores. */
  clipModel?: string;
  /** A local toy-world judge folder (resolveJudgeModel): with clipModel, the judge's scores join CLIP's. Unset: none. */
  judgeModel?: string;
  /** Scratch space; each personalization gets `<workDir>/<id>` (deleted after the stage). */
  workDir: string;
  logger?: StageLogger;
  /** Execution providers of this worker ('cuda' on GPU nodes); overrides the stored options'. */
  executionProviders?: ('cpu' | 'cuda')[];
  intraOpNumThreads?: number;
  /** Least interval between progress writes to Postgres. Default 1000 ms. */
  progressIntervalMs?: number;
  /** How often a running stage asks whether it was canceled. Default 1000 ms. */
  cancelPollMs?: number;
}
