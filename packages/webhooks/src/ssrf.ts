/**
 * SSRF guard: a webhook URL must not reach the service's own network. Every address a host resolves to is
 * checked (an attacker's DNS can return a public and a private one), and the delivery connects through
 * `guardedLookup`, so the address checked is the address used (no DNS rebinding between check and connect).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { WebhookError } from './errors.js';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  ['100::', 64],
] as const)
  blocked.addSubnet(net, bits, 'ipv6');

/** The eight hextets of an IPv6 address (with an embedded dotted quad allowed at the end). */
function hextets(addr: string): number[] {
  let a = addr.split('%')[0]!;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (quad) {
    const p = quad[1]!.split('.').map(Number);
    a = a.slice(0, -quad[1]!.length) + `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? (a.split('::') as [string, string]) : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...zeros, ...t].map((x) => parseInt(x, 16));
}

/** IPv4 embedded in an IPv6 address that routes to it (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::, compatible ::a.b.c.d). */
function embeddedIpv4(addr: string): string | undefined {
  const h = hextets(addr);
  const v4 = () => `${h[6]! >> 8}.${h[6]! & 255}.${h[7]! >> 8}.${h[7]! & 255}`;
  const zero = (from: number, to: number) => h.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && h[5] === 0xffff) return v4();
  if (h[0] === 0x64 && h[1] === 0xff9b && zero(2, 6)) return v4();
  if (zero(0, 6) && (h[6]! !== 0 || h[7]! > 1)) return v4();
  return undefined;
}

/** True when `address` (an IP literal) is private, loopback, link-local (cloud metadata), multicast or reserved. */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 !== undefined) return blocked.check(v4, 'ipv4');
    return blocked.check(address.split('%')[0]!, 'ipv6');
  }
  return true; // not an address at all: refuse rather than guess
}

/** Parses and checks the shape of a webhook URL (http/https, no credentials); throws WebhookError('BAD_URL'). */
export function parseWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookError('BAD_URL', `webhook URL ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new WebhookError('BAD_URL', `webhook URL ${url.origin}: only http and https are allowed`);
  if (url.username || url.password) throw new WebhookError('BAD_URL', 'webhook URL must not carry credentials');
  return url;
}

const hostOf = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '');

export type Resolver = (host: string) => Promise<string[]>;

/** The system resolver (getaddrinfo, like the connection itself), every address. */
export const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, addrs: LookupAddress[]) => (err ? reject(err) : resolve(addrs.map((a) => a.address))));
  });

/**
 * Resolves the URL's host and refuses it when any address is forbidden (unless allowPrivate).
 * Returns the addresses; throws WebhookError('FORBIDDEN_ADDRESS') naming the host and the address.
 */
export async function checkWebhookUrl(raw: string, o: { allowPrivate?: boolean; resolve?: Resolver } = {}): Promise<string[]> {
  const url = parseWebhookUrl(raw);
  const host = hostOf(url);
  const addrs = isIP(host)
    ? [host]
    : await (o.resolve ?? systemResolver)(host).catch((e: Error) => {
        throw new WebhookError('BAD_URL', `webhook host ${host} does not resolve: ${e.message}`);
      });
  if (!addrs.length) throw new WebhookError('BAD_URL', `webhook host ${host} has no address`);
  if (!o.allowPrivate) {
    const bad = addrs.find(isForbiddenAddress);
    if (bad !== undefined)
      throw new WebhookError(
        'FORBIDDEN_ADDRESS',
        `webhook host ${host} resolves to ${bad}, a private, loopback or link-local address (operators may allow these with WEBHOOK_ALLOW_PRIVATE)`,
      );
  }
  return addrs;
}

/** A `lookup` for http.request that only ever hands out checked addresses (see the file header). */
export function guardedLookup(o: { allowPrivate?: boolean; resolve?: Resolver }): LookupFunction {
  return (host, options, callback) => {
    checkWebhookUrl(`http://${isIP(host) === 6 ? `[${host}]` : host}/`, o).then(
      (addrs) => {
        const list = addrs.map((address) => ({ address, family: isIP(address) }));
        if ((options as { all?: boolean }).all) (callback as (e: null, a: typeof list) => void)(null, list);
        else callback(null, list[0]!.address, list[0]!.family);
      },
      (e: Error) => callback(e as NodeJS.ErrnoException, '', 0),
    );
  };
}
