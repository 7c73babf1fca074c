/** A loopback webhook receiver for tests: records every request and answers the given status codes in turn. */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
}

export interface TestReceiver {
  /** `http://127.0.0.1:<port>/hook`. */
  url: string;
  /** Every request so far, in arrival order. */
  received: ReceivedWebhook[];
  close(): void;
}

/** Answers `codes[i]` to the i-th request (the last code repeats); default 200 to all. */
export async function startTestReceiver(codes: readonly number[] = [200]): Promise<TestReceiver> {
  const received: ReceivedWebhook[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = codes[Math.min(received.length - 1, codes.length - 1)]!;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => {
      server.close();
    },
  };
}
