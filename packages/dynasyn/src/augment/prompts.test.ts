import { isAugmentationError } from './errors.js';
import { headNoun, parseLineList, sentenceToPrompt } from './parse.js';
import { renderings, renderPrompt, slotsOf } from './prompt.js';
import { categoryQuotas, selectTemplatePrompts, TemplatePromptProvider } from './template-provider.js';
import { classFamily } from './templates.js';
import type { Subject } from '../types.js';

const mask = { width: 2, height: 2, data: new Uint8Array([1, 0, 0, 0]) };
const subjects: Subject[] = [
  { mask, classWord: 'panda', nounPhrase: 'toy panda with white belly' },
  { mask, classWord: 'bowl', nounPhrase: 'green bowl' },
  { mask, classWord: 'dog' },
];

describe('template prompts', () => {
  test('the same seed gives the same prompts; another seed another selection', () => {
    const phrases = ['toy panda with white belly', 'green bowl'];
    const a = selectTemplatePrompts(phrases, 30, { seed: 7 });
    expect(selectTemplatePrompts(phrases, 30, { seed: 7 })).toEqual(a);
    expect(selectTemplatePrompts(phrases, 30, { seed: 8 })).not.toEqual(a);
  });

  test('count distinct prompts, categories in the quotas, every slot filled by a subject of the prompt', () => {
    for (const phrases of [['panda'], ['toy panda', 'green bowl'], ['dog', 'cat', 'red car']]) {
      const count = 40;
      const ps = selectTemplatePrompts(phrases, count, { seed: 1 });
      expect(ps).toHaveLength(count);
      expect(new Set(ps.map((p) => `${p.text}|${p.subjects}`)).size).toBe(count);
      const q = categoryQuotas(count, phrases.length);
      for (const c of ['plain', 'action', 'interaction'] as const) expect(ps.filter((p) => p.category === c)).toHaveLength(q[c]);
      for (const p of ps) {
        expect(slotsOf(p.text).sort()).toEqual([...p.subjects.keys()]);
        expect(p.subjects.length).toBe(p.category === 'interaction' ? 2 : 1);
        expect(new Set(p.subjects).size).toBe(p.subjects.length);
      }
    }
  });

  test('balanced objects: each subject appears about equally, every pair interacts, agents act on objects', () => {
    const phrases = ['toy panda', 'green bowl', 'brown dog'];
    const ps = selectTemplatePrompts(phrases, 45, { seed: 3 });
    for (const category of ['plain', 'action'] as const) {
      const counts = [0, 1, 2].map((i) => ps.filter((p) => p.category === category && p.subjects[0] === i).length);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
    const pairs = new Map<string, number>();
    for (const p of ps.filter((x) => x.category === 'interaction')) {
      const key = [...p.subjects].sort().join(',');
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
      // the bowl never acts on an agent (toy panda, dog)
      if (p.subjects.includes(1)) expect(p.subjects[0]).not.toBe(1);
    }
    expect([...pairs.keys()].sort()).toEqual(['0,1', '0,2', '1,2']);
    expect(Math.max(...pairs.values()) - Math.min(...pairs.values())).toBeLessThanOrEqual(1);
  });

  test('one subject: no interaction; count 0: nothing; bad arguments are named', () => {
    expect(selectTemplatePrompts(['panda'], 10, { seed: 0 }).every((p) => p.category !== 'interaction')).toBe(true);
    expect(selectTemplatePrompts(['panda'], 0, { seed: 0 })).toEqual([]);
    expect(() => selectTemplatePrompts([], 3, { seed: 0 })).toThrow(/no subject/);
    expect(() => selectTemplatePrompts(['a'], -1, { seed: 0 })).toThrow(/count/);
  });

  test('the provider returns user phrases or class words as noun phrases', async () => {
    const p = new TemplatePromptProvider({ seed: 0 });
    expect(await p.nounPhrases({ width: 2, height: 2, data: new Uint8Array(12) }, subjects)).toEqual(['toy panda with white belly', 'green bowl', 'dog']);
  });

  test('class families, with toy markers winning and modifiers ignored', () => {
    expect(classFamily('toy panda with white belly')).toBe('toy');
    expect(classFamily('teddy bear')).toBe('toy');
    expect(classFamily('dog with a red ball')).toBe('animal');
    expect(classFamily('small green bowl')).toBe('object');
    expect(classFamily('woman')).toBe('person');
    expect(classFamily('red cars')).toBe('vehicle');
    expect(classFamily('zorblax')).toBe('generic');
  });
});

describe('renderings', () => {
  test('placeholder, class and noun renderings differ only in the subject words', () => {
    const p = { text: 'the {0} is throwing the {1} on the beach', category: 'interaction' as const, subjects: [2, 0] };
    const r = renderings(p, subjects);
    expect(r.prompt).toBe('the <asset2> is throwing the <asset0> on the beach');
    expect(r.classPrompt).toBe('the dog is throwing the panda on the beach');
    expect(r.nounPrompt).toBe('the dog is throwing the toy panda with white belly on the beach');
    const rest = (s: string, words: string[]) => words.reduce((acc, w) => acc.split(w).join('#'), s);
    expect(rest(r.prompt, ['<asset2>', '<asset0>'])).toBe(rest(r.classPrompt, ['dog', 'panda']));
    expect(rest(r.nounPrompt, ['dog', 'toy panda with white belly'])).toBe(rest(r.classPrompt, ['dog', 'panda']));
    expect(renderings(p, subjects, ['<a>', '<b>', '<c>']).prompt).toBe('the <c> is throwing the <a> on the beach');
  });

  test('a slot without a word is an error naming the template', () => {
    expect(() => renderPrompt('the {0} and the {1}', ['dog'])).toThrow(/slot \{1\}/);
    try {
      renderPrompt('{3}', []);
    } catch (e) {
      expect(isAugmentationError(e, 'BAD_ARGUMENT')).toBe(true);
    }
  });
});

describe('parsing language-model answers', () => {
  test('numbered, bulleted, quoted, labelled and fenced lists; a chatty header is dropped', () => {
    expect(parseLineList('Here are the noun phrases:\n1. Subject 1: toy panda with white belly\n2) "green bowl."\n')).toEqual([
      'toy panda with white belly',
      'green bowl',
    ]);
    expect(parseLineList('- **red ball**\n* blue cup\n\u2022 tall lamp')).toEqual(['red ball', 'blue cup', 'tall lamp']);
    expect(parseLineList('```json\n["a dog", "a cat."]\n```')).toEqual(['a dog', 'a cat']);
  });

  test('sentences become slot templates in order of appearance, articles and plurals tolerated', () => {
    const phrases = ['toy panda with white belly', 'green bowl'];
    expect(sentenceToPrompt('The green bowl sits beside a toy panda with a white belly.', phrases)).toEqual({
      text: 'the {0} sits beside the {1}.',
      category: 'interaction',
      subjects: [1, 0],
    });
    expect(sentenceToPrompt('A toy panda with white belly is dancing in the rain', phrases)).toEqual({
      text: 'the {0} is dancing in the rain',
      category: 'action',
      subjects: [0],
    });
    // the LM shortened the phrase: the head noun still finds the subject
    expect(sentenceToPrompt('The panda in an oil painting', phrases)).toEqual({ text: 'the {0} in an oil painting', category: 'plain', subjects: [0] });
    expect(sentenceToPrompt('A cat sleeps', phrases)).toBeUndefined();
    expect(headNoun('toy panda with white belly')).toBe('panda');
  });
});
