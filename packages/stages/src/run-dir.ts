/**
 * The run directory: personalize()'s output layout (packages/dynasyn output/) kept in storage under
 * `tenants/<tenant>/personalizations/<id>/run/`. A stage downloads it into `<workDir>/<id>`, works there with
 * the dynasyn functions, and uploads what it made; keys depend only on (personalization, stage output), so a
 * stage that runs twice overwrites the same objects and records the same artifact rows.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ClipTokenizer, loadBundle, type ModelBundle } from '@dynasyn/diffusion';
import { contentTypeFor, tenantKey } from '@dynasyn/storage';
import { loadInput, prepareStage, type PersonalizationInput } from '@dynasyn/dynasyn';
import type { ArtifactKind, PersonalizationJob, StageDeps, StageLogger } from './ports.js';

/**
 * Storage folder of everything of one personalization (the API's uploads, the run directory); DELETE removes it.
 * Built by storage's `tenantKey`, as the API's `personalizationPrefix` is, so both name the same folder.
 */
export const personalizationRoot = (job: Pick<PersonalizationJob, 'tenantId' | 'id'>): string => tenantKey(job.tenantId, 'personalizations', job.id);

/** Storage folder of a personalization's run directory. */
export const runPrefix = (job: Pick<PersonalizationJob, 'tenantId' | 'id'>): string => `${personalizationRoot(job)}/run`;

export interface RunDir {
  dir: string;
  prefix: string;
  bundle: ModelBundle;
  input: PersonalizationInput;
}

/** Decodes, validates and fits the uploaded image and masks (the same as personalize()'s prepare). */
async function loadJobInput(deps: StageDeps, job: PersonalizationJob, bundle: ModelBundle): Promise<PersonalizationInput> {
  const image = await deps.storage.get(job.imageKey);
  const subjects = await Promise.all(
    job.subjects.map(async (s, i) => ({
      mask: await deps.storage.get(s.maskKey),
      classWord: s.classWord,
      ...(s.nounPhrase !== undefined ? { nounPhrase: s.nounPhrase } : {}),
      name: `mask ${i}`,
    })),
  );
  return loadInput({ image, imageName: 'image', subjects }, bundle.sampleSize, { tokenizer: ClipTokenizer.fromDir(bundle.tokenizerDir) });
}

/**
 * Opens the run directory of `job` locally: downloads manifest.json, metrics.json, the `files` and the `folders`
 * a stage needs, loads the input, and writes the manifest and input/ the first time (uploading them).
 */
export async function openRunDir(
  deps: StageDeps,
  job: PersonalizationJob,
  need: { folders?: readonly string[]; files?: readonly string[] } = {},
): Promise<RunDir> {
  const dir = join(deps.workDir, job.id);
  const prefix = runPrefix(job);
  rmSync(dir, { recursive: true, force: true }); // what a killed run left here is not trusted: storage is the truth
  mkdirSync(dir, { recursive: true });
  for (const f of ['manifest.json', 'metrics.json', ...(need.files ?? [])]) await downloadFile(deps, `${prefix}/${f}`, join(dir, f));
  for (const f of need.folders ?? []) await deps.storage.downloadPrefix(`${prefix}/${f}`, join(dir, f));
  const bundle = loadBundle(deps.backbone);
  const input = await loadJobInput(deps, job, bundle);
  if (!existsSync(join(dir, 'manifest.json'))) {
    // the first stage of a personalization: its manifest (with the options as stored, not this worker's device) and input/
    await prepareStage({ dir, bundle, input, options: job.options });
    await uploadFolder(deps, job, dir, 'input', 'image');
    await uploadFile(deps, job, dir, 'manifest.json', 'manifest');
  }
  return { dir, prefix, bundle, input };
}

async function downloadFile(deps: StageDeps, key: string, file: string): Promise<void> {
  if (!(await deps.storage.head(key))) return;
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, await deps.storage.get(key));
}

/** Uploads `<dir>/<folder>` and records each object as an artifact of `kind`. */
export async function uploadFolder(deps: StageDeps, job: PersonalizationJob, dir: string, folder: string, kind: ArtifactKind): Promise<void> {
  if (!existsSync(join(dir, folder))) return;
  const written = await deps.storage.uploadDir(join(dir, folder), `${runPrefix(job)}/${folder}`);
  for (const b of written)
    await deps.db.recordArtifact({ personalizationId: job.id, kind, key: b.key, sha256: b.sha256, size: b.size, contentType: b.contentType });
}

/** Uploads one file of the run directory (when it exists) and records it. */
export async function uploadFile(deps: StageDeps, job: PersonalizationJob, dir: string, rel: string, kind: ArtifactKind): Promise<void> {
  const file = join(dir, rel);
  if (!existsSync(file)) return;
  const { readFileSync } = await import('node:fs');
  const b = await deps.storage.put(`${runPrefix(job)}/${rel}`, readFileSync(file), { contentType: contentTypeFor(rel) });
  await deps.db.recordArtifact({ personalizationId: job.id, kind, key: b.key, sha256: b.sha256, size: b.size, contentType: b.contentType });
}

/** Phases the manifest in storage lists as completed (empty before the first stage). */
export async function storedPhases(deps: StageDeps, job: Pick<PersonalizationJob, 'tenantId' | 'id'>): Promise<string[]> {
  const key = `${runPrefix(job)}/manifest.json`;
  if (!(await deps.storage.head(key))) return [];
  const m = JSON.parse(Buffer.from(await deps.storage.get(key)).toString('utf8')) as { phasesCompleted?: string[] };
  return m.phasesCompleted ?? [];
}

/**
 * Removes a stage's local working directory. A failure to remove it (ENOTDIR, EBUSY, EACCES) is logged, never
 * thrown: by then the stage's outputs are stored, or its own error is on its way out, and a leftover scratch
 * directory must replace neither (nor fail a job whose work is done).
 */
export function removeRunDir(dir: string, logger?: StageLogger): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    logger?.warn({ dir, err: (err as Error).message }, 'could not remove the run directory: left on disk');
  }
}
