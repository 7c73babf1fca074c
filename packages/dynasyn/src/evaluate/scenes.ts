/**
 * Reference scenes of a protocol as personalization inputs: image + mask files with class words, or a toyworld
 * scene spec rendered on the fly (packages/toyworld; its labels are what the judge checks identities against).
 */
import type { InputFiles, InputSource } from '../inputs.js';
import { EvaluationError } from './errors.js';
import type { ProtocolScene } from './protocol.js';

/** What a toy-world subject is: the identity personalization must keep (toyworld SubjectLabels' fields). */
export interface SubjectIdentity {
  class: string;
  colour: string;
  pattern: string;
  accessory: string;
}

export interface ResolvedScene {
  id: string;
  input: InputFiles | InputSource;
  classWords: string[];
  /** Each subject in words (toy-world scenes: toyworld's describeSubject; file scenes: their `phrases`, when given): the `described` row's prompts. */
  descriptions?: string[];
  /** Identities of the subjects, in mask order (toy-world scenes only). */
  identities?: SubjectIdentity[];
  /** The toyworld scene spec (toy-world scenes only). */
  spec?: Record<string, unknown>;
}

interface ToyworldModule {
  renderScene(
    spec: unknown,
    options?: { size?: number },
  ): {
    rgb: Uint8Array;
    width: number;
    height: number;
    masks: Uint8Array[];
    labels: { subjects: SubjectIdentity[] };
  };
  describeSubject(s: SubjectIdentity): string;
}

/** Loads packages/toyworld only when a protocol has a toy-world scene (the method itself does not depend on it). */
async function toyworld(): Promise<ToyworldModule> {
  try {
    return (await import('@dynasyn/toyworld' as string)) as ToyworldModule;
  } catch (e) {
    throw new EvaluationError('MISSING_INPUT', 'toy-world scenes need @dynasyn/toyworld built (npx tsc -b packages/toyworld)', { cause: e });
  }
}

/** The scene as an input for personalize(); `size` is the render size when the scene gives none. */
export async function resolveScene(scene: ProtocolScene, size: number): Promise<ResolvedScene> {
  if (scene.files) {
    const f = scene.files;
    return {
      id: scene.id,
      input: { image: f.image, masks: f.masks, classWords: f.classes, ...(f.phrases ? { nounPhrases: f.phrases } : {}) },
      classWords: f.classes,
      ...(f.phrases ? { descriptions: f.phrases } : {}),
    };
  }
  const tw = await toyworld();
  const spec = scene.toyworld!.spec;
  let r: ReturnType<ToyworldModule['renderScene']>;
  try {
    r = tw.renderScene(spec, { size: scene.toyworld!.size ?? size });
  } catch (e) {
    throw new EvaluationError('BAD_PROTOCOL', `scene ${scene.id}: ${(e as Error).message}`, { cause: e });
  }
  const identities = r.labels.subjects.map((s) => ({ class: s.class, colour: s.colour, pattern: s.pattern, accessory: s.accessory }));
  const classWords = identities.map((s) => s.class);
  const descriptions = identities.map((s) => tw.describeSubject(s));
  return {
    id: scene.id,
    input: {
      image: { width: r.width, height: r.height, data: r.rgb },
      imageName: `scene ${scene.id}`,
      // the descriptions are the subjects' noun phrases, as a file scene's phrases are (what a user, or a
      // vision-language model, says each subject is)
      subjects: r.masks.map((m, i) => ({
        mask: { width: r.width, height: r.height, data: m },
        classWord: classWords[i]!,
        nounPhrase: descriptions[i]!,
        name: `scene ${scene.id} subject ${i}`,
      })),
    },
    classWords,
    descriptions,
    identities,
    spec,
  };
}
