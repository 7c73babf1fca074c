/** The chat client and provider against a local server playing an OpenAI-compatible endpoint. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAugmentationError } from './errors.js';
import { OpenAiChatClient, type ChatMessage } from './openai-client.js';
import { NOUN_PHRASE_QUESTION, OpenAiPromptProvider } from './openai-provider.js';
import type { Subject } from '../types.js';

interface Seen {
  path: string;
  auth: string | undefined;
  body: { model: string; messages: ChatMessage[] };
}
type Handler = (req: Seen, res: http.ServerResponse, n: number) => void;

let server: http.Server;
let baseUrl: string;
let handler: Handler;
let seen: Seen[] = [];

const reply = (res: http.ServerResponse, content: string) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
};

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => {
      raw += c.toString();
    });
    req.on('end', () => {
      const s: Seen = { path: req.url ?? '', auth: req.headers.authorization, body: JSON.parse(raw) as Seen['body'] };
      seen.push(s);
      handler(s, res, seen.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen = [];
});

const client = (o: Partial<ConstructorParameters<typeof OpenAiChatClient>[0]> = {}) =>
  new OpenAiChatClient({ baseUrl, model: 'test-model', apiKey: 'sk-test', backoffMs: 10, timeoutMs: 2000, ...o });
const user: ChatMessage[] = [{ role: 'user', content: 'hello' }];

describe('OpenAiChatClient', () => {
  test('posts model, messages and the bearer key to /chat/completions and returns the content', async () => {
    handler = (_, res) => reply(res, 'hi there');
    expect(await client().complete(user)).toBe('hi there');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.path).toBe('/v1/chat/completions');
    expect(seen[0]!.auth).toBe('Bearer sk-test');
    expect(seen[0]!.body).toEqual({ model: 'test-model', messages: user });
  });

  test('a 500 then a success: retried, with backoff', async () => {
    handler = (_, res, n) => {
      if (n === 1) {
        res.writeHead(500);
        res.end('{"error":{"message":"overloaded"}}');
      } else reply(res, 'ok');
    };
    const t0 = Date.now();
    expect(await client({ backoffMs: 50 }).complete(user)).toBe('ok');
    expect(seen).toHaveLength(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
  });

  test('429 on every attempt: gives up after retries+1 attempts with the endpoint message', async () => {
    handler = (_, res) => {
      res.writeHead(429, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"rate limited"}}');
    };
    await expect(client({ retries: 2 }).complete(user)).rejects.toThrow(/HTTP 429: rate limited \(gave up after 3 attempt/);
    expect(seen).toHaveLength(3);
  });

  test('a 400 is not retried, and its message is surfaced (the key is not)', async () => {
    handler = (_, res) => {
      res.writeHead(400);
      res.end('{"error":{"message":"model test-model does not exist"}}');
    };
    const e = await client()
      .complete(user)
      .catch((x: unknown) => x);
    expect(isAugmentationError(e, 'PROVIDER_HTTP')).toBe(true);
    expect((e as Error).message).toMatch(/HTTP 400: model test-model does not exist/);
    expect((e as Error).message).not.toMatch(/sk-test/);
    expect(seen).toHaveLength(1);
  });

  test('a silent endpoint times out per attempt (and is retried)', async () => {
    handler = () => {
      /* never answers */
    };
    const t0 = Date.now();
    const e = await client({ timeoutMs: 150, retries: 1 })
      .complete(user)
      .catch((x: unknown) => x);
    expect(isAugmentationError(e, 'PROVIDER_TIMEOUT')).toBe(true);
    expect((e as Error).message).toMatch(/no answer within 150 ms .*2 attempt/);
    expect(seen).toHaveLength(2);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test('an unreachable endpoint is a network error; malformed answers are clear errors', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const e = await new OpenAiChatClient({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm', retries: 1, backoffMs: 5 })
      .complete(user)
      .catch((x: unknown) => x);
    expect(isAugmentationError(e, 'PROVIDER_NETWORK')).toBe(true);

    handler = (_, res) => {
      res.writeHead(200);
      res.end('<html>proxy login</html>');
    };
    await expect(client().complete(user)).rejects.toThrow(/not JSON/);
    handler = (_, res) => {
      res.writeHead(200);
      res.end('{"choices":[]}');
    };
    await expect(client().complete(user)).rejects.toThrow(/without choices\[0\]\.message\.content/);
    expect(() => new OpenAiChatClient({ baseUrl: 'not a url', model: 'm' })).toThrow(/not a URL/);
  });
});

describe('OpenAiPromptProvider', () => {
  const image = { width: 4, height: 4, data: new Uint8Array(48).fill(200) };
  const mask = { width: 4, height: 4, data: new Uint8Array(16).fill(1) };
  const subjects: Subject[] = [
    { mask, classWord: 'panda' },
    { mask, classWord: 'bowl' },
  ];

  test('noun phrases: the paper question with the image as a data URL; the list is parsed in subject order', async () => {
    handler = (_, res) => reply(res, 'Sure! Here they are:\n1. Toy panda with white belly.\n2. Green bowl.');
    const p = new OpenAiPromptProvider({ baseUrl, model: 'vlm', backoffMs: 5 });
    expect(await p.nounPhrases(image, subjects)).toEqual(['Toy panda with white belly', 'Green bowl']);
    const content = seen[0]!.body.messages[0]!.content as Array<{ type: string; text?: string; image_url?: { url: string } }>;
    expect(content[0]!.text).toContain(NOUN_PHRASE_QUESTION);
    expect(content[1]!.image_url!.url).toMatch(/^data:image\/png;base64,iVBORw0KGgo/);
    // user-given phrases win, and with all of them given nothing is asked
    seen = [];
    expect(
      await p.nounPhrases(
        image,
        subjects.map((s) => ({ ...s, nounPhrase: `my ${s.classWord}` })),
      ),
    ).toEqual(['my panda', 'my bowl']);
    expect(seen).toHaveLength(0);
  });

  test('noun phrases: too few lines is a clear error', async () => {
    handler = (_, res) => reply(res, 'a panda');
    const e = await new OpenAiPromptProvider({ baseUrl, model: 'vlm' }).nounPhrases(image, subjects).catch((x: unknown) => x);
    expect(isAugmentationError(e, 'MALFORMED_RESPONSE')).toBe(true);
    expect((e as Error).message).toMatch(/asked for 2 noun phrase\(s\), the endpoint answered 1/);
  });

  test('prompts: generate >100, then keep the natural ones (same conversation); sentences map to slots', async () => {
    const phrases = ['toy panda with white belly', 'green bowl'];
    handler = (req, res) => {
      if (req.body.messages.length === 1)
        reply(res, Array.from({ length: 120 }, (_, i) => `${i + 1}. The toy panda with white belly is throwing the green bowl ${i}.`).join('\n'));
      else
        reply(
          res,
          [
            'Here are 50 natural sentences:',
            '1. The toy panda with a white belly is washing the green bowl.',
            '2. A green bowl sits on top of the toy panda with white belly.',
            '3. The toy panda with white belly is dancing in the rain.',
            '4. A green bowl in an oil painting.',
            '5. A cat sleeps on a sofa.',
            '6. The toy panda with a white belly is washing the green bowl.',
          ].join('\n'),
        );
    };
    const ps = await new OpenAiPromptProvider({ baseUrl, model: 'lm' }).prompts(phrases, 10);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.body.messages[0]!.content).toMatch(
      /^Generate more than 100 diverse sentences describing the interaction between a toy panda with white belly and a green bowl/,
    );
    expect(seen[1]!.body.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(seen[1]!.body.messages[2]!.content).toMatch(/keep only 50 natural sentences .*balanced/);
    expect(ps).toEqual([
      { text: 'the {0} is washing the {1}', category: 'interaction', subjects: [0, 1] },
      { text: 'the {0} sits on top of the {1}', category: 'interaction', subjects: [1, 0] },
      { text: 'the {0} is dancing in the rain', category: 'action', subjects: [0] },
      { text: 'the {0} in an oil painting', category: 'plain', subjects: [1] },
    ]);
  });

  test('prompts naming no subject are a clear error', async () => {
    handler = (_, res) => reply(res, 'A cat.\nA dog.');
    await expect(new OpenAiPromptProvider({ baseUrl, model: 'lm' }).prompts(['green bowl'], 5)).rejects.toThrow(/name none of the subjects/);
  });
});
