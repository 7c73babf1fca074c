/**
 * Prompt provider on an OpenAI-compatible chat endpoint, with the paper's queries (appendix "Process of
 * prompts generation"): a vision-language model names each subject with a short noun phrase, a language
 * model writes more than 100 sentences of the subjects acting and interacting, then keeps the 50 most
 * natural ones with balanced objects; the sentences are mapped back to slot templates.
 */
import { encodePng } from '@dynasyn/imaging';
import type { RgbImage, Subject } from '../types.js';
import { AugmentationError } from './errors.js';
import { OpenAiChatClient, type ChatClientOptions, type ChatMessage } from './openai-client.js';
import { parseLineList, sentenceToPrompt } from './parse.js';
import type { AugmentationPrompt, PromptProvider } from './prompt.js';

/** The paper's VLM question (appendix). */
export const NOUN_PHRASE_QUESTION = 'Please describe each subject in the photo in less than 5 words using a noun phrase.';
/** The paper's filtering request (appendix), with the number kept as a parameter. */
export const KEEP_NATURAL_REQUEST = (n: number): string =>
  `Can you keep only ${n} natural sentences and ensure that the occurrences of objects, excluding the subject, are balanced?`;

const quoteList = (xs: readonly string[]): string => (xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

/** The generation request: the paper's sentence for a pair, its natural extension for one or three+ subjects. */
export function generationRequest(phrases: readonly string[]): string {
  const what =
    phrases.length === 1
      ? `a ${phrases[0]} doing different actions in different places`
      : `the interaction between ${quoteList(phrases.map((p) => `a ${p}`))}, and each of them acting alone`;
  return (
    `Generate more than 100 diverse sentences describing ${what}. ` +
    `Refer to the subjects with exactly these phrases: ${phrases.map((p) => JSON.stringify(p)).join(', ')}. Write one sentence per line, with nothing else.`
  );
}

export class OpenAiPromptProvider implements PromptProvider {
  private readonly client: OpenAiChatClient;

  constructor(options: ChatClientOptions) {
    this.client = new OpenAiChatClient(options);
  }

  /** Asks only when some subject has no user-given phrase; the user's phrases always win. */
  async nounPhrases(image: RgbImage, subjects: readonly Subject[]): Promise<string[]> {
    if (subjects.every((s) => s.nounPhrase)) return subjects.map((s) => s.nounPhrase!.trim());
    const png = await encodePng(image);
    const order = subjects.map((s, i) => `${i + 1}) the ${s.classWord}`).join(', ');
    const question =
      `${NOUN_PHRASE_QUESTION} There ${subjects.length === 1 ? 'is 1 subject' : `are ${subjects.length} subjects`}: ${order}. ` +
      `Answer with exactly ${subjects.length} line(s), one noun phrase per subject in this order, and nothing else.`;
    const messages: ChatMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'text', text: question },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${Buffer.from(png).toString('base64')}` } },
        ],
      },
    ];
    const answer = await this.client.complete(messages);
    const lines = parseLineList(answer).filter((l) => l.split(/\s+/).length <= 10);
    if (lines.length < subjects.length) {
      throw new AugmentationError(
        'MALFORMED_RESPONSE',
        `asked for ${subjects.length} noun phrase(s), the endpoint answered ${lines.length}: ${JSON.stringify(answer.slice(0, 200))}`,
      );
    }
    return subjects.map((s, i) => (s.nounPhrase ?? lines[i]!).trim());
  }

  async prompts(subjectPhrases: readonly string[], count: number): Promise<AugmentationPrompt[]> {
    if (!subjectPhrases.length) throw new AugmentationError('BAD_ARGUMENT', 'no subject to write prompts for');
    const first: ChatMessage = { role: 'user', content: generationRequest(subjectPhrases) };
    const generated = await this.client.complete([first]);
    const keep: ChatMessage = {
      role: 'user',
      content: `${KEEP_NATURAL_REQUEST(Math.max(50, count))} Write one sentence per line, keeping the subjects' exact phrases, with nothing else.`,
    };
    const kept = await this.client.complete([first, { role: 'assistant', content: generated }, keep]);
    const seen = new Set<string>();
    const out: AugmentationPrompt[] = [];
    for (const sentence of parseLineList(kept)) {
      const p = sentenceToPrompt(sentence, subjectPhrases);
      const id = p && `${p.text}|${p.subjects.join(',')}`;
      if (!p || seen.has(id!)) continue;
      seen.add(id!);
      out.push(p);
      if (out.length === count) break;
    }
    if (count > 0 && out.length === 0) {
      throw new AugmentationError(
        'MALFORMED_RESPONSE',
        `the endpoint's sentences name none of the subjects (${subjectPhrases.map((p) => JSON.stringify(p)).join(', ')}): ${JSON.stringify(kept.slice(0, 200))}`,
      );
    }
    return out;
  }
}
