/**
 * SSRF guard: a webhook URL must not reach the service's own network. Every address a host resolves to is
 * checked (an attacker's DNS can return a public and a private one), and the delivery connects through
 * `guardedLookup`, so the address checked is the address used (no DNS rebinding between check and connect).
 *
 * Private, loopback and reserved networks are refused unless the operator lists them (`allowCidrs`, the
 * WEBHOOK_ALLOW_CIDRS variable); link-local (cloud metadata at 169.254.169.254, fe80::/10), multicast,
 * broadcast and unspecified addresses are refused even when listed, and so are the ports of local services.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { WebhookError } from './errors.js';

type Net = readonly [string, number];

/** No allow-list opens these: metadata endpoints, multicast and broadcast are never a webhook receiver. */
const NEVER_V4: Net[] = [
  ['0.0.0.0', 8],
  ['169.254.0.0', 16],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4], // reserved, with 255.255.255.255 (broadcast) in it
];
const NEVER_V6: Net[] = [
  ['::', 128],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
];
/** Refused unless allow-listed: the service's own networks and ranges no public receiver lives in. */
const PRIVATE_V4: Net[] = [
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
];
const PRIVATE_V6: Net[] = [
  ['::1', 128],
  ['fc00::', 7],
  ['2001:db8::', 32],
  ['100::', 64],
];

function blockList(v4: Net[], v6: Net[]): BlockList {
  const list = new BlockList();
  for (const [net, bits] of v4) list.addSubnet(net, bits, 'ipv4');
  for (const [net, bits] of v6) list.addSubnet(net, bits, 'ipv6');
  return list;
}
const never = blockList(NEVER_V4, NEVER_V6);
const privateNets = blockList(PRIVATE_V4, PRIVATE_V6);

/** The loopback networks, what the deprecated `allowPrivate: true` (WEBHOOK_ALLOW_PRIVATE=true) now stands for. */
export const LOOPBACK_CIDRS: readonly string[] = ['127.0.0.0/8', '::1/128'];

/**
 * Ports of services a receiver never listens on but a private network is full of (SSH, SMTP, databases,
 * caches, container and cluster control planes). Below 1024 only 80 and 443 are allowed.
 */
const SERVICE_PORTS = new Set([
  2375, 2376, 2379, 2380, 3306, 4369, 5432, 5672, 5984, 6379, 6443, 8500, 9042, 9092, 9200, 9300, 10250, 10255, 11211, 25672, 27017,
]);

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

/** The address as it is routed: an IPv4 inside IPv6 becomes that IPv4; undefined when not an IP literal. */
function routed(address: string): { address: string; family: 'ipv4' | 'ipv6' } | undefined {
  const family = isIP(address);
  if (family === 4) return { address, family: 'ipv4' };
  if (family !== 6) return undefined;
  const v4 = embeddedIpv4(address);
  return v4 !== undefined ? { address: v4, family: 'ipv4' } : { address: address.split('%')[0]!, family: 'ipv6' };
}

/**
 * Operator-listed networks webhooks may reach although they are private (`10.0.0.0/8`, `::1/128`, a bare
 * address for one host). Throws WebhookError('BAD_URL') naming a malformed entry, or one wholly inside the
 * networks nothing can open (so a listed `169.254.169.254` is an error at start, not a silent no-op).
 */
export function parseAllowCidrs(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const raw of cidrs) {
    const entry = raw.trim();
    const [net = '', bitsText, extra] = entry.split('/');
    const family = isIP(net);
    const max = family === 4 ? 32 : 128;
    const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
    if (!family || extra !== undefined || !(bits >= 0 && bits <= max))
      throw new WebhookError('BAD_URL', `${JSON.stringify(raw)} is not a CIDR (a.b.c.d/n or x:y::z/n)`);
    const r = routed(net)!;
    const v4Bits = family === 6 && r.family === 'ipv4' ? bits - 96 : bits;
    if (v4Bits < 0) throw new WebhookError('BAD_URL', `${entry}: an IPv4-mapped network needs a prefix of at least 96 bits`);
    if (isInsideNever(r.address, r.family, v4Bits))
      throw new WebhookError('BAD_URL', `${entry} is link-local, multicast, broadcast or unspecified: webhooks can never reach it, whatever the allow-list`);
    list.addSubnet(r.address, v4Bits, r.family);
  }
  return list;
}

/** True when the whole network `address/bits` lies inside one of the never-allowed networks. */
function isInsideNever(address: string, family: 'ipv4' | 'ipv6', bits: number): boolean {
  return (family === 'ipv4' ? NEVER_V4 : NEVER_V6).some(([net, netBits]) => {
    if (bits < netBits) return false;
    const one = new BlockList();
    one.addSubnet(net, netBits, family);
    return one.check(address, family);
  });
}

export interface AddressPolicy {
  /** Private networks operators open to webhooks (WEBHOOK_ALLOW_CIDRS). Default none. */
  allowCidrs?: readonly string[];
  /** @deprecated Use allowCidrs. `true` opens loopback only (LOOPBACK_CIDRS), never link-local or private ranges. */
  allowPrivate?: boolean;
}

function allowListOf(p: AddressPolicy): BlockList | undefined {
  const cidrs = [...(p.allowCidrs ?? []), ...(p.allowPrivate ? LOOPBACK_CIDRS : [])];
  return cidrs.length ? parseAllowCidrs(cidrs) : undefined;
}

function reasonWith(address: string, allow: BlockList | undefined): string | undefined {
  const r = routed(address);
  if (!r) return 'not an IP address';
  if (never.check(r.address, r.family)) return 'a link-local (cloud metadata), multicast, broadcast or unspecified address, never allowed';
  if (privateNets.check(r.address, r.family) && !allow?.check(r.address, r.family))
    return 'a private, loopback or reserved address (operators may allow networks with WEBHOOK_ALLOW_CIDRS)';
  return undefined;
}

/**
 * Why `address` (an IP literal) may not receive webhooks, or undefined when it may. Never allowed:
 * link-local (cloud metadata), multicast, broadcast, unspecified; private, loopback and reserved ranges only
 * when `policy` lists them. IPv6 forms of an IPv4 address (mapped, NAT64, compatible) count as that address.
 */
export function forbiddenReason(address: string, policy: AddressPolicy = {}): string | undefined {
  return reasonWith(address, allowListOf(policy));
}

/** True when `address` (an IP literal) may not receive webhooks under `policy` (default: no private network). */
export function isForbiddenAddress(address: string, policy: AddressPolicy = {}): boolean {
  return forbiddenReason(address, policy) !== undefined;
}

/** Parses and checks the shape of a webhook URL (http/https, no credentials); throws WebhookError('BAD_URL'). */
export function parseWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookError('BAD_URL', `webhook URL ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new WebhookError('BAD_URL', `webhook URL ${url.protocol}//...: only http and https are allowed`);
  if (url.username || url.password) throw new WebhookError('BAD_URL', 'webhook URL must not carry credentials');
  return url;
}

/** Throws WebhookError('FORBIDDEN_ADDRESS') for a port below 1024 other than 80/443, or a local service's port. */
export function checkWebhookPort(url: URL): void {
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  if ((port < 1024 && port !== 80 && port !== 443) || SERVICE_PORTS.has(port))
    throw new WebhookError(
      'FORBIDDEN_ADDRESS',
      `webhook port ${port} is refused: receivers listen on 80, 443 or an unprivileged port that is not a known service's`,
    );
}

const hostOf = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '');

export type Resolver = (host: string) => Promise<string[]>;

/** The system resolver (getaddrinfo, like the connection itself), every address. */
export const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, addrs: LookupAddress[]) => (err ? reject(err) : resolve(addrs.map((a) => a.address))));
  });

export interface GuardOptions extends AddressPolicy {
  resolve?: Resolver;
}

/**
 * Checks the URL's shape and port, resolves its host and refuses it when any address is forbidden.
 * Returns the addresses; throws WebhookError('FORBIDDEN_ADDRESS') naming the host and the address.
 */
export async function checkWebhookUrl(raw: string, o: GuardOptions = {}): Promise<string[]> {
  const url = parseWebhookUrl(raw);
  checkWebhookPort(url);
  return checkHost(hostOf(url), o);
}

async function checkHost(host: string, o: GuardOptions): Promise<string[]> {
  const addrs = isIP(host)
    ? [host]
    : await (o.resolve ?? systemResolver)(host).catch((e: Error) => {
        throw new WebhookError('BAD_URL', `webhook host ${host} does not resolve: ${e.message}`);
      });
  if (!addrs.length) throw new WebhookError('BAD_URL', `webhook host ${host} has no address`);
  const allow = allowListOf(o);
  for (const address of addrs) {
    const reason = reasonWith(address, allow);
    if (reason !== undefined) throw new WebhookError('FORBIDDEN_ADDRESS', `webhook host ${host} resolves to ${address}, ${reason}`);
  }
  return addrs;
}

/** A `lookup` for http.request that only ever hands out checked addresses (see the file header). */
export function guardedLookup(o: GuardOptions): LookupFunction {
  return (host, options, callback) => {
    checkHost(host, o).then(
      (addrs) => {
        const list = addrs.map((address) => ({ address, family: isIP(address) }));
        if ((options as { all?: boolean }).all) (callback as (e: null, a: typeof list) => void)(null, list);
        else callback(null, list[0]!.address, list[0]!.family);
      },
      (e: Error) => callback(e as NodeJS.ErrnoException, '', 0),
    );
  };
}
