import { ClipTokenizer, normalizePromptText } from '@dynasyn/diffusion';
import { syntheticShapesSource } from './synthetic-source.js';
import { captionWords, learnCaptionTokenizer, vocabSize } from './tokenizer.js';

describe('caption tokenizer', () => {
  let captions: string[];
  beforeAll(async () => {
    captions = await syntheticShapesSource(16).captions(3, 300);
  });

  it('round-trips captions and makes every caption word one token', () => {
    const tok = new ClipTokenizer(learnCaptionTokenizer(captions));
    for (const c of captions.slice(0, 50)) {
      const ids = tok.encode(c);
      expect(tok.decode(ids, { skipSpecialTokens: true }).trim()).toBe(normalizePromptText(c).trim());
      // <|startoftext|> + one token per word + <|endoftext|>
      expect(ids.length).toBe(captionWords([c]).length + 2);
    }
    // a word the captions never use still encodes (into pieces) and decodes
    expect(tok.decode(tok.encode('a zebra'), { skipSpecialTokens: true }).trim()).toBe('a zebra');
  });

  it('learns the same merges from the same captions in any order, and different ones from other captions', () => {
    const a = learnCaptionTokenizer(captions);
    const b = learnCaptionTokenizer([...captions].reverse());
    expect(b.merges).toBe(a.merges);
    expect(b.vocab).toEqual(a.vocab);
    const other = learnCaptionTokenizer(['a zebra crossing a river of lava']);
    expect(other.merges).not.toBe(a.merges);
    expect(vocabSize(a)).toBe(Object.keys(a.vocab).length);
    expect(new ClipTokenizer(a).vocabSize).toBe(vocabSize(a));
  });
});
