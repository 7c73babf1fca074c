/**
 * English captions from varied templates, and the parser that reads them back into labels (the judge needs
 * to know what a prompt asked for; the tests check that a caption names exactly its scene's labels).
 *
 * Grammar: [style] NP0 [action0] [interaction NP1 [action1]] [context], where
 * NP = article [colour] [pattern adjective] class [with-pattern] [accessory phrase]. A short caption drops
 * any of the bracketed parts; the complete one (captionFor's `detail: 'full'`) names every label except an
 * accessory `none` and the facing.
 */
import { createRng, hashText, type Rng } from './prng.js';
import { canonicalJson, type SceneSpec, type SubjectSpec } from './spec.js';
import { ACCESSORIES, ACTIONS, CLASSES, COLOURS, CONTEXTS, INTERACTIONS, PATTERNS, STYLES } from './vocab.js';
import type { AccessoryName, ActionName, ClassName, ColourName, ContextName, InteractionName, PatternName, StyleName } from './vocab.js';

/** Pattern words: adjectives before the class, phrases after it. `plain` has no phrase. */
const PATTERN_ADJECTIVES: Record<PatternName, string[]> = {
  plain: ['plain'],
  stripes: ['striped', 'stripy'],
  dots: ['spotted', 'polka-dot', 'dotted'],
  checks: ['checkered', 'checked', 'plaid'],
};
const PATTERN_PHRASES: Record<PatternName, string[]> = {
  plain: [],
  stripes: ['with stripes'],
  dots: ['with dots', 'with polka dots', 'with spots'],
  checks: ['with checks', 'with a checkered pattern'],
};
const ACCESSORY_PHRASES: Record<AccessoryName, string[]> = {
  none: [],
  hat: ['wearing a hat', 'with a hat', 'wearing a top hat', 'in a top hat'],
  bow: ['wearing a bow', 'with a bow', 'with a bow tie', 'wearing a bow tie'],
  crown: ['wearing a crown', 'with a crown', 'with a golden crown'],
};
const ACTION_PHRASES: Record<ActionName, string[]> = {
  standing: ['standing', 'standing up'],
  sitting: ['sitting', 'sitting down'],
  jumping: ['jumping', 'leaping', 'jumping in the air'],
  'lying down': ['lying down', 'lying on the ground'],
  'upside down': ['upside down', 'turned upside down'],
};
const INTERACTION_PHRASES: Record<InteractionName, string[]> = {
  'next to': ['next to', 'beside'],
  'on top of': ['on top of'],
  'in front of': ['in front of'],
  behind: ['behind'],
};
const CONTEXT_PHRASES: Record<ContextName, string[]> = {
  'grass field': ['in a grass field', 'on the grass', 'in a field of grass'],
  beach: ['on the beach', 'at the beach', 'on a sandy beach'],
  snow: ['in the snow', 'on the snow', 'in a snowy field'],
  kitchen: ['in a kitchen', 'in the kitchen', 'on a kitchen counter'],
  'night sky': ['under the night sky', 'at night', 'under the stars'],
  desert: ['in the desert', 'in a desert', 'on the desert sand'],
};
const STYLE_PHRASES: Record<StyleName, string[]> = {
  shaded: ['a picture of', 'a cartoon of', 'a shaded drawing of'],
  sketch: ['a sketch of', 'a pencil sketch of', 'a line drawing of'],
};

const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');

/** Which parts a caption names. */
interface Mention {
  colour: boolean;
  pattern: boolean;
  accessory: boolean;
  action: boolean;
}

function nounPhrase(s: SubjectSpec, m: Mention, rng: Rng): string {
  const words: string[] = [];
  const post: string[] = [];
  if (m.colour) words.push(s.colour);
  if (m.pattern) {
    const phrases = PATTERN_PHRASES[s.pattern];
    if (phrases.length && rng.chance(0.35)) post.push(rng.pick(phrases));
    else words.push(rng.pick(PATTERN_ADJECTIVES[s.pattern]));
  }
  // "a striped red cat" reads as well as "a red striped cat"
  if (words.length === 2 && rng.chance(0.3)) words.reverse();
  words.push(s.class);
  if (m.accessory && s.accessory !== 'none') post.push(rng.pick(ACCESSORY_PHRASES[s.accessory]));
  const head = words.join(' ');
  return [`${article(head)} ${head}`, ...(post.length === 2 ? [post[0], 'and', post[1]] : post)].join(' ');
}

function subjectPhrase(s: SubjectSpec, m: Mention, rng: Rng): string {
  const np = nounPhrase(s, m, rng);
  return m.action ? `${np} ${rng.pick(ACTION_PHRASES[s.action])}` : np;
}

/**
 * A subject's identity in words, without article: colour, pattern adjective, class and accessory phrase ("orange
 * striped cat with a bow"; an accessory `none` unsaid). The words a prompt would use to ask for this very subject
 * (the evaluation's `described` row puts them where the placeholders stand); parseCaption reads them back.
 */
export function describeSubject(s: Pick<SubjectSpec, 'class' | 'colour' | 'pattern' | 'accessory'>): string {
  const accessory = s.accessory === 'none' ? [] : [ACCESSORY_PHRASES[s.accessory][1]!];
  return [s.colour, PATTERN_ADJECTIVES[s.pattern][0]!, s.class, ...accessory].join(' ');
}

export interface CaptionOptions {
  /** `full`: names every label; `random` (default): each part kept with some probability, down to "a cat". */
  detail?: 'full' | 'random';
}

/** One caption of the scene, drawn from `rng`. */
export function captionFor(spec: SceneSpec, rng: Rng, options: CaptionOptions = {}): string {
  const full = options.detail === 'full';
  // one random caption in seven is short: the class words and at most the context ("a cat", "a cat on a dog")
  const short = !full && rng.chance(1 / 7);
  const keep = (p: number) => full || (!short && rng.chance(p));
  const mention = (): Mention => ({ colour: keep(0.75), pattern: keep(0.55), accessory: keep(0.55), action: keep(0.6) });
  const parts: string[] = [];
  const withStyle = spec.style === 'sketch' ? keep(0.8) : keep(0.25);
  if (withStyle) parts.push(rng.pick(STYLE_PHRASES[spec.style]));
  parts.push(subjectPhrase(spec.subjects[0]!, mention(), rng));
  if (spec.subjects.length === 2) {
    parts.push(rng.pick(INTERACTION_PHRASES[spec.interaction!]));
    parts.push(subjectPhrase(spec.subjects[1]!, mention(), rng));
  }
  if (short ? rng.chance(0.3) : keep(0.6)) parts.push(rng.pick(CONTEXT_PHRASES[spec.context]));
  return parts.join(' ');
}

/** `count` captions of a scene: the first complete, the others random templates; seeded by the spec itself. */
export function captionsFor(spec: SceneSpec, count = 4): string[] {
  const rng = createRng(`captions/${hashText(canonicalJson(spec))}`);
  const out = [captionFor(spec, rng, { detail: 'full' })];
  for (let i = 1; i < count; i++) out.push(captionFor(spec, rng));
  return out;
}

/** What a caption says about one subject; absent fields are not mentioned. */
export interface MentionedSubject {
  class?: ClassName;
  colour?: ColourName;
  pattern?: PatternName;
  accessory?: AccessoryName;
  action?: ActionName;
}

/** What a caption says; absent fields are not mentioned. */
export interface MentionedLabels {
  subjects: MentionedSubject[];
  interaction?: InteractionName;
  context?: ContextName;
  style?: StyleName;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

/** The phrase table as (label, phrase) pairs, longest phrases first so "lying on the ground" beats "on the". */
function table<L extends string>(phrases: Record<L, string[]>, extra: Partial<Record<L, string[]>> = {}): Array<[L, RegExp]> {
  const rows: Array<[L, string]> = [];
  for (const label of Object.keys(phrases) as L[]) for (const p of [...phrases[label], ...(extra[label] ?? [])]) rows.push([label, p]);
  rows.sort((a, b) => b[1].length - a[1].length);
  return rows.map(([label, p]) => [label, new RegExp(`(^|[^a-z-])${escape(p)}(?![a-z-])`, 'i')]);
}

const CLASS_TABLE = table(Object.fromEntries(CLASSES.map((c) => [c, [c]])) as Record<ClassName, string[]>);
const COLOUR_TABLE = table(Object.fromEntries(COLOURS.map((c) => [c, [c]])) as Record<ColourName, string[]>);
const PATTERN_TABLE = table(PATTERN_ADJECTIVES, PATTERN_PHRASES);
const ACCESSORY_TABLE = table(ACCESSORY_PHRASES);
const ACTION_TABLE = table(ACTION_PHRASES);
const INTERACTION_TABLE = table(INTERACTION_PHRASES);
const CONTEXT_TABLE = table(CONTEXT_PHRASES);
const STYLE_TABLE = table(STYLE_PHRASES);

/** Finds and cuts the first phrase of the table in `text`: [label, text without it]. */
function take<L extends string>(text: string, rows: Array<[L, RegExp]>): [L | undefined, string] {
  for (const [label, re] of rows) {
    const m = re.exec(text);
    if (m) return [label, `${text.slice(0, m.index)}${m[1]} ${text.slice(m.index + m[0].length)}`];
  }
  return [undefined, text];
}

function parseSubject(text: string): MentionedSubject {
  const out: MentionedSubject = {};
  let rest = text;
  // phrases that contain other words go first: accessory and action phrases, then patterns, then single words
  let found: string | undefined;
  [found, rest] = take(rest, ACCESSORY_TABLE);
  if (found) out.accessory = found as AccessoryName;
  [found, rest] = take(rest, ACTION_TABLE);
  if (found) out.action = found as ActionName;
  [found, rest] = take(rest, PATTERN_TABLE);
  if (found) out.pattern = found as PatternName;
  [found, rest] = take(rest, CLASS_TABLE);
  if (found) out.class = found as ClassName;
  [found, rest] = take(rest, COLOUR_TABLE);
  if (found) out.colour = found as ColourName;
  return out;
}

/** Reads a caption of this world back into the labels it names (for prompts: what a sample should show). */
export function parseCaption(caption: string): MentionedLabels {
  let rest = caption.toLowerCase();
  const out: MentionedLabels = { subjects: [] };
  let found: string | undefined;
  [found, rest] = take(rest, STYLE_TABLE);
  if (found) out.style = found as StyleName;
  [found, rest] = take(rest, CONTEXT_TABLE);
  if (found) out.context = found as ContextName;
  for (const [label, re] of INTERACTION_TABLE) {
    const m = re.exec(rest);
    if (!m) continue;
    out.interaction = label;
    out.subjects = [parseSubject(rest.slice(0, m.index + m[1]!.length)), parseSubject(rest.slice(m.index + m[0].length))];
    return out;
  }
  out.subjects = [parseSubject(rest)];
  return out;
}

// every label is sayable: a vocabulary word without a phrase would make captions silently incomplete
for (const [name, list, phrases] of [
  ['pattern', PATTERNS, PATTERN_ADJECTIVES],
  ['accessory', ACCESSORIES, ACCESSORY_PHRASES],
  ['action', ACTIONS, ACTION_PHRASES],
  ['interaction', INTERACTIONS, INTERACTION_PHRASES],
  ['context', CONTEXTS, CONTEXT_PHRASES],
  ['style', STYLES, STYLE_PHRASES],
] as const)
  for (const label of list) if (!(label in phrases)) throw new Error(`captions: no phrase for ${name} ${label}`);
