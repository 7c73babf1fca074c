/** The prepare stage: the run directory's manifest and its copy of the input (input/reference.png, mask_<i>.png). */
import { existsSync } from 'node:fs';
import { artifactPath, createManifest, markPhaseCompleted, readManifest, writeInputs, writeManifest, type Manifest } from '../output/artifacts.js';
import type { StageRun } from './run.js';

/**
 * Writes a new manifest when the directory has none (an existing one is kept: personalize() checks first that it
 * is the same run), the input images, and phase `prepare`. Returns the manifest.
 */
export async function prepareStage(run: Pick<StageRun, 'dir' | 'bundle' | 'input' | 'options'>): Promise<Manifest> {
  const { dir, input, options: o } = run;
  if (!existsSync(artifactPath(dir, 'manifest'))) {
    writeManifest(
      dir,
      createManifest({
        backboneDir: run.bundle.dir,
        tokens: input.subjects.map((_, i) => `<asset${i}>`),
        classWords: input.subjects.map((s) => s.classWord),
        nounPhrases: input.subjects.map((s) => s.nounPhrase ?? s.classWord),
        preset: o.preset,
        seed: o.seed,
        options: o,
      }),
    );
  }
  await writeInputs(
    dir,
    input.image,
    input.subjects.map((s) => s.mask),
  );
  return markPhaseCompleted(dir, 'prepare');
}

/** Manifest phases completed in the run directory (none before prepare). */
export const completedPhases = (dir: string): string[] => (existsSync(artifactPath(dir, 'manifest')) ? readManifest(dir).phasesCompleted : []);
