/**
 * Drawing scene specs at random, and the identities held out of every training set (personalization is
 * tested on them: the backbone has seen each of their attributes, never the combination).
 */
import { ToyworldError } from './errors.js';
import { toRng, type Rng } from './prng.js';
import type { SceneSpec, SubjectSpec } from './spec.js';
import { ACCESSORIES, ACTIONS, CLASSES, COLOURS, CONTEXTS, INTERACTIONS, PATTERNS, STYLES, identityKey } from './vocab.js';
import type { ContextName, Identity, InteractionName, StyleName } from './vocab.js';

/** Identities that never appear in data sets sampled with `heldOut: 'exclude'`: two per class. */
export const HELD_OUT_IDENTITIES: readonly Identity[] = Object.freeze(
  (
    [
      ['cat', 'orange', 'stripes', 'bow'],
      ['cat', 'blue', 'dots', 'crown'],
      ['dog', 'brown', 'checks', 'hat'],
      ['dog', 'yellow', 'plain', 'bow'],
      ['duck', 'pink', 'dots', 'hat'],
      ['duck', 'green', 'stripes', 'none'],
      ['rabbit', 'white', 'checks', 'crown'],
      ['rabbit', 'purple', 'plain', 'hat'],
      ['teddy bear', 'red', 'dots', 'none'],
      ['teddy bear', 'green', 'checks', 'bow'],
      ['robot', 'yellow', 'stripes', 'crown'],
      ['robot', 'black', 'dots', 'bow'],
      ['car', 'purple', 'stripes', 'hat'],
      ['car', 'white', 'plain', 'crown'],
      ['cup', 'blue', 'checks', 'none'],
      ['cup', 'orange', 'dots', 'hat'],
      ['fish', 'red', 'checks', 'crown'],
      ['fish', 'black', 'stripes', 'none'],
      ['box', 'pink', 'plain', 'bow'],
      ['box', 'brown', 'stripes', 'crown'],
    ] as const
  ).map(([cls, colour, pattern, accessory]) => Object.freeze({ class: cls, colour, pattern, accessory })),
);

const HELD_OUT_KEYS = new Set(HELD_OUT_IDENTITIES.map(identityKey));

/** True for an identity in HELD_OUT_IDENTITIES (extra fields such as the action are ignored). */
export function isHeldOut(identity: Identity): boolean {
  return HELD_OUT_KEYS.has(identityKey(identity));
}

export interface SampleOptions {
  /** `exclude` (default): no held-out identity; `only`: every subject is a held-out identity; `include`: no filter. */
  heldOut?: 'exclude' | 'only' | 'include';
  /** Number of subjects; default 1 or 2 with equal odds. */
  subjects?: 1 | 2;
  /** Fix the context instead of drawing it. */
  context?: ContextName;
  /** Fix the style instead of drawing it. */
  style?: StyleName;
  /** Fix the interaction (two-subject scenes) instead of drawing it. */
  interaction?: InteractionName;
}

function sampleIdentity(rng: Rng, heldOut: 'exclude' | 'only' | 'include'): Identity {
  if (heldOut === 'only') return { ...rng.pick(HELD_OUT_IDENTITIES) };
  for (;;) {
    const identity: Identity = { class: rng.pick(CLASSES), colour: rng.pick(COLOURS), pattern: rng.pick(PATTERNS), accessory: rng.pick(ACCESSORIES) };
    if (heldOut === 'include' || !isHeldOut(identity)) return identity;
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Draws a scene spec: every label uniform over its list, held-out identities handled per `heldOut`. */
export function sampleSceneSpec(rngOrSeed: Rng | number | string, options: SampleOptions = {}): SceneSpec {
  const rng = toRng(rngOrSeed);
  const heldOut = options.heldOut ?? 'exclude';
  if (!['exclude', 'only', 'include'].includes(heldOut))
    throw new ToyworldError('BAD_ARGUMENT', `heldOut must be exclude, only or include; got ${String(heldOut)}`);
  const count = options.subjects ?? (rng.chance(0.5) ? 1 : 2);
  if (count !== 1 && count !== 2) throw new ToyworldError('BAD_ARGUMENT', `subjects must be 1 or 2; got ${String(count)}`);
  const subjects: SubjectSpec[] = [];
  while (subjects.length < count) {
    const identity = sampleIdentity(rng, heldOut);
    // two subjects of one scene are two different identities
    if (subjects.some((s) => identityKey(s) === identityKey(identity))) continue;
    subjects.push({ ...identity, action: rng.pick(ACTIONS), facing: rng.chance(0.5) ? 'left' : 'right' });
  }
  const spec: SceneSpec = {
    subjects,
    context: options.context ?? rng.pick(CONTEXTS),
    style: options.style ?? rng.pick(STYLES),
    layout: { x: round3(rng.range(0.4, 0.6)), scale: round3(rng.range(0.85, 1.15)), mirror: rng.chance(0.5) },
  };
  if (count === 2) spec.interaction = options.interaction ?? rng.pick(INTERACTIONS);
  return spec;
}

/** The spec of scene `index` of the data set with seed `seed`: each scene has its own stream. */
export function datasetSceneSpec(seed: number | string, index: number, options: SampleOptions = {}): SceneSpec {
  return sampleSceneSpec(toRng(`${seed}/scene/${index}`), options);
}
