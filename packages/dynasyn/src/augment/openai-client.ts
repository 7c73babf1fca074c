/**
 * A minimal client for OpenAI-compatible chat endpoints (`POST {baseUrl}/chat/completions`): OpenAI itself,
 * or a local server (vLLM, llama.cpp, Ollama) speaking the same protocol. Each attempt has a deadline
 * (AbortController); 429, 5xx, network failures and timeouts are retried with exponential backoff
 * (honouring Retry-After), anything else fails at once with the endpoint's own message.
 */
import { AugmentationError } from './errors.js';

export interface ChatClientOptions {
  /** Endpoint root, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`. */
  baseUrl: string;
  /** Model name sent in the request (`gpt-4o`, a local model's id). */
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>` when given (never logged nor put in errors). */
  apiKey?: string;
  /** Deadline of one attempt, request and body, in ms. Default 60000. */
  timeoutMs?: number;
  /** Extra attempts after the first on retryable failures. Default 3. */
  retries?: number;
  /** First backoff delay in ms; doubles per retry. Default 500. */
  backoffMs?: number;
  /** Cap of one backoff delay (and of Retry-After) in ms. Default 20000. */
  maxBackoffMs?: number;
  /** Sampling temperature sent with each request; default: the endpoint's. */
  temperature?: number;
  /** The fetch implementation (tests, proxies); default the global fetch. */
  fetch?: typeof fetch;
}

export type ChatContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ChatContentPart[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Why one attempt failed, and whether another may succeed. */
interface AttemptFailure {
  retryable: boolean;
  error: AugmentationError;
  retryAfterMs?: number;
}

export class OpenAiChatClient {
  private readonly url: string;

  constructor(private readonly options: ChatClientOptions) {
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new AugmentationError('BAD_ARGUMENT', `chat endpoint baseUrl ${JSON.stringify(options.baseUrl)} is not a URL`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new AugmentationError('BAD_ARGUMENT', `chat endpoint baseUrl must be http(s), got ${base.protocol}`);
    if (!options.model) throw new AugmentationError('BAD_ARGUMENT', 'chat endpoint model is empty');
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  }

  /** The assistant's text for `messages` (after retries), or an AugmentationError naming the endpoint. */
  async complete(messages: readonly ChatMessage[]): Promise<string> {
    const retries = this.options.retries ?? 3;
    const backoff = this.options.backoffMs ?? 500;
    const cap = this.options.maxBackoffMs ?? 20000;
    let last: AttemptFailure | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep(Math.min(cap, Math.max(backoff * 2 ** (attempt - 1), last?.retryAfterMs ?? 0)));
      const r = await this.attempt(messages);
      if (typeof r === 'string') return r;
      last = r;
      if (!r.retryable) throw r.error;
    }
    const e = last!.error;
    throw new AugmentationError(e.code, `${e.message} (gave up after ${retries + 1} attempt(s))`, { cause: e.cause });
  }

  private async attempt(messages: readonly ChatMessage[]): Promise<string | AttemptFailure> {
    const timeoutMs = this.options.timeoutMs ?? 60000;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    const body = JSON.stringify({
      model: this.options.model,
      messages,
      ...(this.options.temperature !== undefined ? { temperature: this.options.temperature } : {}),
    });
    try {
      const res = await (this.options.fetch ?? fetch)(this.url, { method: 'POST', headers, body, signal: controller.signal });
      const text = await res.text();
      if (!res.ok) {
        const retryable = res.status === 429 || res.status >= 500;
        const retryAfter = Number(res.headers.get('retry-after'));
        return {
          retryable,
          error: new AugmentationError('PROVIDER_HTTP', `chat endpoint ${this.url} answered HTTP ${res.status}: ${errorDetail(text)}`),
          ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
        };
      }
      return contentOf(text, this.url);
    } catch (e) {
      if (e instanceof AugmentationError) return { retryable: false, error: e };
      if (controller.signal.aborted) {
        return {
          retryable: true,
          error: new AugmentationError('PROVIDER_TIMEOUT', `chat endpoint ${this.url} gave no answer within ${timeoutMs} ms`, { cause: e }),
        };
      }
      const why = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
      return { retryable: true, error: new AugmentationError('PROVIDER_NETWORK', `chat endpoint ${this.url} could not be reached: ${why}`, { cause: e }) };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The endpoint's own error message when it sent one (`{"error":{"message":...}}`), else the body's start. */
function errorDetail(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof j.error === 'string' ? j.error : (j.error?.message ?? j.message);
    if (typeof m === 'string' && m) return m.slice(0, 300);
  } catch {
    /* not JSON */
  }
  return body.trim().slice(0, 300) || '(empty body)';
}

/** choices[0].message.content as text (a string, or an array of text parts). */
function contentOf(body: string, url: string): string {
  let j: unknown;
  try {
    j = JSON.parse(body);
  } catch {
    throw new AugmentationError('MALFORMED_RESPONSE', `chat endpoint ${url} answered with something that is not JSON: ${body.trim().slice(0, 120)}`);
  }
  const content = (j as { choices?: Array<{ message?: { content?: unknown } }> })?.choices?.[0]?.message?.content;
  const text =
    typeof content === 'string' ? content : Array.isArray(content) ? content.map((p) => (typeof p?.text === 'string' ? p.text : '')).join('') : undefined;
  if (!text || !text.trim()) throw new AugmentationError('MALFORMED_RESPONSE', `chat endpoint ${url} answered without choices[0].message.content`);
  return text;
}
