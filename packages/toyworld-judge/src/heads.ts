/**
 * The judge's label space: one softmax head per attribute, their logits side by side in one vector.
 * The interaction head reads "region A relative to region B", so it has the reverse of "on top of"
 * ("under") as a fifth class: a pair scored in either order has a true label.
 */
import { ACCESSORIES, ACTIONS, CLASSES, COLOURS, CONTEXTS, INTERACTIONS, PATTERNS, STYLES, type InteractionName } from '@dynasyn/toyworld';

export const RELATIONS = ['next to', 'on top of', 'under', 'in front of', 'behind'] as const;
export type Relation = (typeof RELATIONS)[number];

export const HEADS = {
  class: CLASSES,
  colour: COLOURS,
  pattern: PATTERNS,
  accessory: ACCESSORIES,
  action: ACTIONS,
  relation: RELATIONS,
  context: CONTEXTS,
  style: STYLES,
} as const;

export type HeadName = keyof typeof HEADS;
export const HEAD_NAMES = Object.keys(HEADS) as HeadName[];
/** Heads that describe the subject in region A. */
export const SUBJECT_HEADS = ['class', 'colour', 'pattern', 'accessory', 'action'] as const satisfies readonly HeadName[];
export type SubjectHead = (typeof SUBJECT_HEADS)[number];

/** Offset of each head's logits in the concatenated vector. */
export const HEAD_OFFSETS: Record<HeadName, number> = (() => {
  let o = 0;
  const out = {} as Record<HeadName, number>;
  for (const h of HEAD_NAMES) {
    out[h] = o;
    o += HEADS[h].length;
  }
  return out;
})();
export const LOGITS = HEAD_NAMES.reduce((s, h) => s + HEADS[h].length, 0);

/** Per-pixel classes of the subject finder: background, then the world's classes. */
export const FINDER_CLASSES = ['background', ...CLASSES] as const;
/** The finder's grid: 16 x 16 cells of 4 x 4 pixels on a 64 px image. */
export const FINDER_GRID = 16;

/** Relation of subject `a` to subject `b` in a scene whose interaction reads "subject 0 <interaction> subject 1". */
export function relationOf(interaction: InteractionName, a: 0 | 1): Relation {
  if (a === 0 || interaction === 'next to') return interaction;
  return ({ 'on top of': 'under', 'in front of': 'behind', behind: 'in front of' } as const)[interaction];
}

/** The scene interaction a relation of subject 0 to subject 1 states ("under" has none: subject 1 is on top). */
export function interactionOf(relation: Relation): InteractionName | undefined {
  return relation === 'under' ? undefined : relation;
}
