/**
 * The world's vocabulary: every label a scene can carry. Each list is `as const`, so the label types are the
 * lists' members; the order is fixed (the judge and the backbone may use list indices as class ids).
 */

/** Subject classes, each with its own silhouette (src/subjects.ts). */
export const CLASSES = ['cat', 'dog', 'duck', 'rabbit', 'teddy bear', 'robot', 'car', 'cup', 'fish', 'box'] as const;
export type ClassName = (typeof CLASSES)[number];

/** Body colours, as sRGB bytes; chosen to stay apart in hue or lightness at 64 px. */
export const COLOUR_RGB = {
  red: [215, 38, 38],
  orange: [245, 135, 25],
  yellow: [246, 214, 40],
  green: [50, 165, 60],
  blue: [40, 85, 215],
  purple: [135, 55, 185],
  pink: [246, 140, 192],
  brown: [125, 75, 35],
  white: [244, 244, 240],
  black: [32, 32, 36],
} as const satisfies Record<string, readonly [number, number, number]>;
export type ColourName = keyof typeof COLOUR_RGB;
export const COLOURS = Object.keys(COLOUR_RGB) as ColourName[];

/** Body patterns, drawn in the subject's own frame (they turn with it). */
export const PATTERNS = ['plain', 'stripes', 'dots', 'checks'] as const;
export type PatternName = (typeof PATTERNS)[number];

/** Accessories: a top hat and a crown on the head, a bow at the neck. */
export const ACCESSORIES = ['none', 'hat', 'bow', 'crown'] as const;
export type AccessoryName = (typeof ACCESSORIES)[number];

/** Poses or states of one subject. */
export const ACTIONS = ['standing', 'sitting', 'jumping', 'lying down', 'upside down'] as const;
export type ActionName = (typeof ACTIONS)[number];

/** How subject 0 relates to subject 1 in a two-subject scene ("a cat on top of a dog": cat is subject 0). */
export const INTERACTIONS = ['next to', 'on top of', 'in front of', 'behind'] as const;
export type InteractionName = (typeof INTERACTIONS)[number];

/** Backgrounds. */
export const CONTEXTS = ['grass field', 'beach', 'snow', 'kitchen', 'night sky', 'desert'] as const;
export type ContextName = (typeof CONTEXTS)[number];

/** Drawing styles: flat colours with shading and outlines, or a pale line sketch on paper. */
export const STYLES = ['shaded', 'sketch'] as const;
export type StyleName = (typeof STYLES)[number];

/** Which way a subject looks (most classes are drawn in profile). */
export const FACINGS = ['left', 'right'] as const;
export type Facing = (typeof FACINGS)[number];

/** What personalization keeps: one instance of a class. */
export interface Identity {
  class: ClassName;
  colour: ColourName;
  pattern: PatternName;
  accessory: AccessoryName;
}

/** A stable text key of an identity, e.g. `cat/red/stripes/hat`. */
export function identityKey(id: Identity): string {
  return `${id.class}/${id.colour}/${id.pattern}/${id.accessory}`;
}
