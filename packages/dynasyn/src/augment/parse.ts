/**
 * Reading language-model answers: line lists in whatever shape chat models write them (numbered, bulleted,
 * quoted, in a code fence or as a JSON array, with a chatty first line), and sentences mapped back to
 * slot templates by finding each subject's phrase in them.
 */
import type { AugmentationPrompt, PromptCategory } from './prompt.js';

const ARTICLE = '(?:(?:a|an|the)\\s+)?';

/** Items of a list answer, cleaned: no numbering, bullets, labels (`Subject 1:`), quotes or final period. */
export function parseLineList(answer: string): string[] {
  const text = answer.replace(/```[a-z]*\n?/gi, '').trim();
  if (text.startsWith('[')) {
    try {
      const j: unknown = JSON.parse(text);
      if (Array.isArray(j))
        return j
          .filter((x): x is string => typeof x === 'string')
          .map(cleanItem)
          .filter(Boolean);
    } catch {
      /* not JSON after all: read it as lines */
    }
  }
  return (
    text
      .split(/\r?\n/)
      .map((l) => l.trim())
      // a chatty header ("Here are the sentences:") ends with a colon and is not an item
      .filter((l) => l && !/:$/.test(l))
      .map(cleanItem)
      .filter(Boolean)
  );
}

function cleanItem(line: string): string {
  let s = line.trim();
  s = s.replace(/^(?:[-*\u2022\u2013]\s+|\(?\d{1,3}[.):]\s*|#+\s*)/, '');
  s = s.replace(/^(?:\*\*)?(?:subject|object|asset)\s*#?\d+(?:\*\*)?\s*[:\-\u2013]\s*/i, '');
  s = s.replace(/^<asset\d+>\s*[:\-\u2013]\s*/i, '');
  s = s.replace(/^\*\*(.*)\*\*$/, '$1');
  s = s.replace(/^["'\u201c\u2018](.*)["'\u201d\u2019]$/, '$1').trim();
  return s.replace(/[.;]+$/, '').trim();
}

const escape = (w: string): string => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regex for a phrase: case-insensitive, flexible whitespace, optional articles before each word. */
function phrasePattern(phrase: string): RegExp | undefined {
  const words = phrase
    .toLowerCase()
    .match(/[\p{L}\p{N}'-]+/gu)
    ?.filter((w) => !['a', 'an', 'the'].includes(w));
  if (!words?.length) return undefined;
  return new RegExp(`\\b${ARTICLE}${words.map(escape).join(`\\s+${ARTICLE}`)}\\b`, 'giu');
}

/** The phrase's head noun (last word before a modifier such as `with`): `toy panda with white belly` -> panda. */
export function headNoun(phrase: string): string | undefined {
  const words = phrase.toLowerCase().match(/[\p{L}\p{N}'-]+/gu) ?? [];
  const cut = words.findIndex((w) => ['with', 'of', 'in', 'on', 'holding', 'wearing', 'that'].includes(w));
  return (cut > 0 ? words.slice(0, cut) : words).at(-1);
}

const NOT_ACTIONS = new Set([
  'painting',
  'drawing',
  'clothing',
  'building',
  'morning',
  'evening',
  'ceiling',
  'wedding',
  'king',
  'ring',
  'string',
  'thing',
  'nothing',
  'something',
  'everything',
  'spring',
  'lighting',
  'setting',
  'background',
  'sing',
  'wing',
  'swing',
]);

/** Plain or action for a one-subject sentence: an -ing verb or `is/are <verb>` makes it an action (a heuristic). */
export function singleCategory(sentence: string): PromptCategory {
  const words = sentence.toLowerCase().match(/[a-z]+/g) ?? [];
  return words.some((w) => w.endsWith('ing') && w.length > 4 && !NOT_ACTIONS.has(w)) ? 'action' : 'plain';
}

/**
 * A sentence with each subject's phrase (or, failing that, its head noun) replaced by a slot; slots are
 * numbered in order of appearance. Undefined when no subject is named.
 */
export function sentenceToPrompt(sentence: string, phrases: readonly string[]): AugmentationPrompt | undefined {
  let text = sentence.trim();
  const found: number[] = [];
  // longer phrases first, so `toy panda` is not claimed by a subject called `panda`
  const order = phrases.map((_, i) => i).sort((a, b) => phrases[b]!.length - phrases[a]!.length);
  const marks = new Map<number, string>();
  for (const i of order) {
    const mark = `\u0000${i}\u0000`;
    for (const pattern of [phrasePattern(phrases[i]!), headPattern(phrases[i]!)]) {
      if (!pattern || !pattern.test(text)) continue;
      pattern.lastIndex = 0;
      text = text.replace(pattern, mark);
      marks.set(i, mark);
      break;
    }
  }
  if (marks.size === 0) return undefined;
  const positions = [...marks].map(([i, m]) => [i, text.indexOf(m)] as const).sort((a, b) => a[1] - b[1]);
  positions.forEach(([i], slot) => {
    text = text.split(marks.get(i)!).join(`the {${slot}}`);
    found.push(i);
  });
  // the subject takes "the": drop a doubled article the LM wrote before the phrase ("the the {0}", "a the {0}")
  text = text.replace(/\b(?:a|an|the)\s+the \{/gi, 'the {');
  return { text, category: found.length >= 2 ? 'interaction' : singleCategory(sentence), subjects: found };
}

function headPattern(phrase: string): RegExp | undefined {
  const head = headNoun(phrase);
  return head ? new RegExp(`\\b${ARTICLE}${escape(head)}(?:e?s)?\\b`, 'giu') : undefined;
}
