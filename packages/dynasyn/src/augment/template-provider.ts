/**
 * The default prompt provider: the built-in template library (templates.ts), no network. Noun phrases are
 * the user's (`Subject.nounPhrase`) or the class words. Selection is seeded and balanced: plain and action
 * prompts go round-robin over the subjects, interactions round-robin over the pairs, so each subject
 * appears about equally often and every pair interacts; duplicates are never returned.
 */
import { GaussianRng } from '@dynasyn/diffusion';
import type { RgbImage, Subject } from '../types.js';
import { AugmentationError } from './errors.js';
import type { AugmentationPrompt, PromptCategory, PromptProvider } from './prompt.js';
import { AGENT_FAMILIES, classFamily, FAMILY_ACTIONS, interactionTemplates, plainTemplates, SETTINGS, type ClassFamily } from './templates.js';

export interface TemplateProviderOptions {
  /** Seed of every choice (the same seed and phrases give the same prompts). */
  seed: number;
  /** Share of each category; single-subject inputs have no interactions. Default plain 0.25, action 0.35, interaction 0.4 (1 subject: 0.4 / 0.6). */
  mix?: Partial<Record<PromptCategory, number>>;
}

/** Templates that already say where they happen take no extra setting. */
const HAS_PLACE = /\b(on (a|the)|in (a|the)|at (the|sunset)|through|inside|on its|into)\b/;

export class TemplatePromptProvider implements PromptProvider {
  constructor(private readonly options: TemplateProviderOptions) {}

  async nounPhrases(_image: RgbImage, subjects: readonly Subject[]): Promise<string[]> {
    return subjects.map((s) => (s.nounPhrase ?? s.classWord).trim());
  }

  async prompts(subjectPhrases: readonly string[], count: number): Promise<AugmentationPrompt[]> {
    return selectTemplatePrompts(subjectPhrases, count, this.options);
  }
}

/** Category quotas summing to `count` (largest remainders). */
export function categoryQuotas(count: number, subjects: number, mix: TemplateProviderOptions['mix'] = {}): Record<PromptCategory, number> {
  const w: Record<PromptCategory, number> =
    subjects >= 2
      ? { plain: mix.plain ?? 0.25, action: mix.action ?? 0.35, interaction: mix.interaction ?? 0.4 }
      : { plain: mix.plain ?? 0.4, action: mix.action ?? 0.6, interaction: 0 };
  const cats: PromptCategory[] = ['plain', 'action', 'interaction'];
  const total = cats.reduce((s, c) => s + Math.max(0, w[c]), 0);
  if (!(total > 0)) throw new AugmentationError('BAD_ARGUMENT', `prompt mix ${JSON.stringify(mix)} gives no category a positive share`);
  const exact = cats.map((c) => (count * Math.max(0, w[c])) / total);
  const q = exact.map(Math.floor);
  const order = cats.map((_, i) => i).sort((a, b) => exact[b]! - q[b]! - (exact[a]! - q[a]!) || a - b);
  for (let k = 0, left = count - q.reduce((s, x) => s + x, 0); k < left; k++) q[order[k % 3]!]!++;
  return { plain: q[0]!, action: q[1]!, interaction: q[2]! };
}

function shuffled<T>(items: readonly T[], rng: GaussianRng): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.uniformInt(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Templates in a seeded order that cycles through all verbs before reusing one with another setting. */
function candidateQueue(templates: readonly string[], withSettings: boolean, rng: GaussianRng): string[] {
  const verbs = shuffled([...new Set(templates)], rng);
  if (!withSettings) return verbs;
  const settings = shuffled(SETTINGS, rng);
  const out: string[] = [];
  for (let r = 0; r < settings.length; r++) {
    verbs.forEach((v, i) => {
      if (HAS_PLACE.test(v)) {
        if (r === 0) out.push(v);
      } else out.push(v + settings[(r + i) % settings.length]!);
    });
  }
  return out;
}

export function selectTemplatePrompts(phrases: readonly string[], count: number, options: TemplateProviderOptions): AugmentationPrompt[] {
  if (!Number.isInteger(count) || count < 0) throw new AugmentationError('BAD_ARGUMENT', `prompt count must be a non-negative integer, got ${count}`);
  const n = phrases.length;
  if (n === 0) throw new AugmentationError('BAD_ARGUMENT', 'no subject to write prompts for');
  const rng = new GaussianRng(options.seed).fork('template-prompts');
  const families: ClassFamily[] = phrases.map(classFamily);
  const quotas = categoryQuotas(count, n, options.mix);

  const queues = new Map<string, string[]>();
  const queue = (key: string, make: () => string[]): string[] => {
    let q = queues.get(key);
    if (!q) queues.set(key, (q = make()));
    return q;
  };
  const seen = new Set<string>();
  const out: AugmentationPrompt[] = [];
  const take = (key: string, make: () => string[], category: PromptCategory, subjects: number[]): boolean => {
    const q = queue(key, make);
    while (q.length) {
      const text = q.shift()!;
      const id = `${text}|${subjects.join(',')}`;
      if (seen.has(id)) continue;
      seen.add(id);
      out.push({ text, category, subjects });
      return true;
    }
    return false;
  };

  // single-subject categories: round-robin over a seeded subject order, skipping subjects that ran out
  for (const category of ['plain', 'action'] as const) {
    const order = shuffled([...Array(n).keys()], rng);
    let given = 0;
    for (let k = 0; given < quotas[category] && k < quotas[category] + n * 200; k++) {
      const i = order[k % n]!;
      const made = take(
        `${category}:${i}`,
        () => candidateQueue(category === 'plain' ? plainTemplates(families[i]!) : FAMILY_ACTIONS[families[i]!], category === 'action', rng),
        category,
        [i],
      );
      if (made) given++;
      else if ([...order].every((j) => queues.get(`${category}:${j}`)?.length === 0)) break;
    }
  }

  // interactions: round-robin over seeded pairs; an agent acts on a non-agent, else the roles alternate
  const pairs = shuffled(Array.from({ length: n }, (_, i) => Array.from({ length: n - i - 1 }, (_, d) => [i, i + 1 + d] as [number, number])).flat(), rng);
  const flips = new Map<string, boolean>();
  let given = 0;
  for (let k = 0; pairs.length && given < quotas.interaction && k < quotas.interaction + pairs.length * 400; k++) {
    const [a, b] = pairs[k % pairs.length]!;
    const agentA = AGENT_FAMILIES.has(families[a]!),
      agentB = AGENT_FAMILIES.has(families[b]!);
    const pairKey = `${a},${b}`;
    let actorFirst: boolean;
    if (agentA !== agentB) actorFirst = agentA;
    else {
      const prev = flips.get(pairKey);
      actorFirst = prev === undefined ? rng.uniformInt(2) === 0 : !prev;
      flips.set(pairKey, actorFirst);
    }
    const [x, y] = actorFirst ? [a, b] : [b, a];
    if (take(`interaction:${x},${y}`, () => candidateQueue(interactionTemplates(families[x]!, families[y]!), true, rng), 'interaction', [x, y])) given++;
    else if (pairs.every(([p, q]) => queues.get(`interaction:${p},${q}`)?.length === 0 && queues.get(`interaction:${q},${p}`)?.length === 0)) break;
  }
  // training draws augmented pairs in turn: mix the categories
  return shuffled(out, rng);
}
