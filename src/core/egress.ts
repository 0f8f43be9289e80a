// Egress for one group's proxy socket: decides whether the container may reach host:port, then
// forwards absolute-form HTTP(S) requests (injecting the secrets bound to that host) or opens a
// blind CONNECT tunnel.
//
// Invariants:
// - Identity is the socket: the caller builds EgressOptions for exactly one group; nothing in a
//   request can name another group or widen its policy.
// - Every check happens before any connection, in this order: syntax, port, IP literal,
//   allowlist (so no DNS query leaves for a host outside the allowlist), then ONE lookup whose
//   every address must be public. The connection goes to the checked address; nothing looks the
//   name up again (no DNS rebinding).
// - Each request yields exactly one onDecision call, and nothing connects unless that call
//   returned normally (no egress without an audit record).
// - Secret values never appear in decisions, refusals or error bodies. They are injected only
//   over TLS, only for hosts bound to them, and redacted from what the upstream sends back.

import dns from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { pipeline, Transform, type Duplex, type TransformCallback } from 'node:stream';

export interface EgressPolicy {
  /** Domains this group may reach: exact host names or "*.example.com" (subdomains only, not the apex). */
  readonly allow: readonly string[];
  /** Ports allowed for CONNECT and plain requests (default [80, 443]). */
  readonly ports?: readonly number[];
}

export interface SecretBinding {
  readonly name: string;
  readonly value: string;
  /** Exact host names or "*.suffix", as in EgressPolicy.allow. */
  readonly hosts: readonly string[];
  /** Lower-case names of the request headers the value may be put into (e.g. ["authorization"]). */
  readonly headers: readonly string[];
}

export type Decision =
  | { allowed: true; host: string; port: number; address: string }
  | { allowed: false; host: string; port: number; reason: string };

export type DecisionRecord = Decision & { method: string; kind: 'http' | 'connect'; secrets?: readonly string[] };

export interface EgressOptions {
  readonly group: string;
  readonly policy: EgressPolicy;
  /** Already filtered to this group's secrets. */
  readonly secrets: readonly SecretBinding[];
  /**
   * Contract: should never throw; called exactly once per request (allowed or refused) with plain
   * data for the audit log, never a secret value (`secrets` lists the names injected). If it
   * throws anyway, an allowed request is refused with 500: no egress without an audit record.
   */
  readonly onDecision: (d: DecisionRecord) => void;
  /** Contract: may reject (the request is refused). Default: dns.promises.lookup(host, { all: true, verbatim: true }). */
  readonly lookup?: (host: string) => Promise<{ address: string; family: 4 | 6 }[]>;
  /** Contract: connects to exactly this address (no lookup); may throw. Default: net.connect. */
  readonly connect?: (address: string, port: number) => net.Socket;
  /** Contract: as connect, plus TLS with SNI and certificate check against servername. Default: tls.connect. */
  readonly tlsConnect?: (address: string, port: number, servername: string) => tls.TLSSocket;
  /** Tests only: let loopback addresses through (nothing else). Default false. */
  readonly allowLoopback?: boolean;
  /** Contract: the addresses of this host's own interfaces, asked per decision. Default: os.networkInterfaces(). */
  readonly hostAddresses?: () => readonly string[];
  /** Aborting destroys this module's in-flight upstream requests and tunnels (the http.Server does not track tunnels). */
  readonly signal?: AbortSignal;
}

// ---- Addresses --------------------------------------------------------------------------------

const cidr = (base: string, bits: number, reason: string) => ({ base: toBig(base), bits: BigInt(bits), reason });
const V4 = [ // first match wins: metadata before the ranges that contain it
  cidr('169.254.169.254', 32, 'cloud metadata'), cidr('100.100.100.200', 32, 'cloud metadata'),
  cidr('168.63.129.16', 32, 'cloud metadata'), cidr('0.0.0.0', 8, 'unspecified'), cidr('10.0.0.0', 8, 'private'),
  cidr('100.64.0.0', 10, 'CGNAT'), cidr('127.0.0.0', 8, 'loopback'), cidr('169.254.0.0', 16, 'link-local'),
  cidr('172.16.0.0', 12, 'private'), cidr('192.0.0.0', 24, 'reserved'), cidr('192.88.99.0', 24, 'reserved'),
  cidr('192.168.0.0', 16, 'private'), cidr('198.18.0.0', 15, 'reserved'), cidr('224.0.0.0', 4, 'multicast'),
  cidr('240.0.0.0', 4, 'reserved'),
];
const V6 = [
  cidr('::', 128, 'unspecified'), cidr('::1', 128, 'loopback'), cidr('fd00:ec2::254', 128, 'cloud metadata'),
  cidr('64:ff9b:1::', 48, 'reserved'), cidr('100::', 64, 'reserved'), cidr('2001::', 23, 'reserved'),
  cidr('2002::', 16, 'reserved'), cidr('fc00::', 7, 'private'), cidr('fe80::', 10, 'link-local'),
  cidr('fec0::', 10, 'private'), cidr('ff00::', 8, 'multicast'),
];
const MAPPED = [cidr('::ffff:0:0', 96, 'IPv4-mapped'), cidr('64:ff9b::', 96, 'NAT64')];
const GLOBAL_V6 = cidr('2000::', 3, '');

/** An IP address as a 32-bit (IPv4) or 128-bit (IPv6) number. */
function toBig(ip: string): bigint {
  if (net.isIPv4(ip)) return ip.split('.').reduce((n, part) => (n << 8n) | BigInt(part), 0n);
  let s = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)?.[1];
  if (v4) { const n = toBig(v4); s = `${s.slice(0, -v4.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`; }
  const [head = '', rest] = s.split('::');
  const h = head ? head.split(':') : [];
  const r = rest ? rest.split(':') : [];
  const words = [...h, ...Array<string>(rest === undefined ? 0 : 8 - h.length - r.length).fill('0'), ...r];
  return words.reduce((n, w) => (n << 16n) | BigInt(parseInt(w, 16)), 0n);
}

const within = (n: bigint, width: bigint, c: { base: bigint; bits: bigint }) => n >> (width - c.bits) === c.base >> (width - c.bits);

/**
 * Classifies an IP: null when it is a public unicast address, else why it is refused. Documentation
 * ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32) count as public: the internet
 * does not route them, so refusing them would protect nothing, and tests name fake upstreams with them.
 */
export function blockedAddressReason(ip: string): string | null {
  const bare = ip.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, ''); // brackets, IPv6 zone id
  if (net.isIPv4(bare)) return V4.find((c) => within(toBig(bare), 32n, c))?.reason ?? null;
  if (!net.isIPv6(bare)) return 'not an IP address';
  const n = toBig(bare);
  for (const m of MAPPED) {
    if (!within(n, 128n, m)) continue;
    const inner = V4.find((c) => within(n & 0xffffffffn, 32n, c))?.reason;
    return inner ? `${m.reason} ${inner}` : null;
  }
  return V6.find((c) => within(n, 128n, c))?.reason ?? (within(n, 128n, GLOBAL_V6) ? null : 'reserved');
}

// ---- Host names and the pure checks -------------------------------------------------------------

const DEFAULT_PORTS: readonly number[] = [80, 443];
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;
const normalize = (host: string) => host.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();

/** Whether host matches an entry: exact (case-insensitive, trailing dot tolerated) or "*.suffix" for proper subdomains. */
export function hostAllowed(host: string, allow: readonly string[]): boolean {
  const h = normalize(host);
  if (h === '') return false;
  return allow.some((entry) => {
    const e = normalize(entry);
    if (!e.startsWith('*.')) return e === h;
    const suffix = e.slice(1); // ".example.com": a whole-label match, never "evilexample.com"
    return suffix.length > 1 && h.length > suffix.length && h.endsWith(suffix);
  });
}

type Refusal = Extract<Decision, { allowed: false }>;
/** A name is at most 253 characters (DNS): a refusal's record keeps no more of what was asked for. */
const MAX_HOST_CHARS = 253;
const refusal = (host: string, port: number, reason: string): Refusal => ({ allowed: false, host: host.slice(0, MAX_HOST_CHARS), port, reason });

/** One spelling per address: IPv4 and IPv4-mapped IPv6 compare equal. */
function addressKey(ip: string): string {
  const bare = ip.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  if (net.isIPv4(bare)) return `4:${toBig(bare)}`;
  if (!net.isIPv6(bare)) return `?:${bare}`;
  const n = toBig(bare);
  return within(n, 128n, MAPPED[0]!) ? `4:${n & 0xffffffffn}` : `6:${n}`;
}

const interfaceAddresses = () => Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));

function addressRefusal(address: string, opts: EgressOptions): string | null {
  const reason = blockedAddressReason(address);
  if (reason === 'loopback' && opts.allowLoopback) return null;
  if (reason) return reason;
  // A public address of this host's own reaches its services as surely as loopback does.
  const key = addressKey(address);
  return (opts.hostAddresses ?? interfaceAddresses)().some((a) => addressKey(a) === key) ? 'an address of this host' : null;
}

/** The checks that need no network: syntax, port, IP literal, allowlist. */
function precheck(rawHost: string, port: number, opts: EgressOptions): Refusal | { host: string; literal: boolean } {
  const host = normalize(rawHost);
  const literal = net.isIP(host) !== 0;
  if (!literal && !HOST_NAME.test(host)) return refusal(host, port, `${JSON.stringify(host.slice(0, 100))} is not a valid host name`);
  const ports = opts.policy.ports ?? DEFAULT_PORTS;
  if (!ports.includes(port)) return refusal(host, port, `port ${port} is not allowed (allowed: ${ports.join(', ')})`);
  const blocked = literal ? addressRefusal(host, opts) : null;
  if (blocked) return refusal(host, port, `${host} is a blocked address (${blocked})`);
  if (!hostAllowed(host, opts.policy.allow)) {
    return refusal(host, port, `${host} is not in the egress allowlist of group "${opts.group}" (the owner can add it in egress.json)`);
  }
  return { host, literal };
}

const defaultLookup = async (host: string) =>
  (await dns.promises.lookup(host, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 as const : 4 as const }));

async function resolve(host: string, port: number, opts: EgressOptions): Promise<Decision> {
  let addresses: { address: string }[];
  try {
    addresses = await (opts.lookup ?? defaultLookup)(host);
  } catch (err) {
    return refusal(host, port, `cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const [first] = addresses;
  if (!first) return refusal(host, port, `${host} has no addresses`);
  for (const { address } of addresses) {
    const blocked = addressRefusal(address, opts);
    if (blocked) return refusal(host, port, `${host} resolves to ${address}, a blocked address (${blocked})`);
  }
  return { allowed: true, host, port, address: first.address };
}

/** Resolve, check every address (refuse if ANY is blocked), pick one; the caller connects to exactly that address. */
export async function decide(host: string, port: number, opts: EgressOptions): Promise<Decision> {
  const pre = precheck(host, port, opts);
  if ('reason' in pre) return pre;
  return pre.literal ? { allowed: true, host: pre.host, port, address: pre.host } : resolve(pre.host, port, opts);
}

// ---- Secrets --------------------------------------------------------------------------------------

const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PLACEHOLDER = /hako-secret:([A-Za-z_][A-Za-z0-9_]*)/g;

/** What the container sees instead of a secret, e.g. `Authorization: Bearer hako-secret:GITHUB_TOKEN`. */
export function secretPlaceholder(name: string): string {
  if (!SECRET_NAME.test(name)) throw new TypeError(`secret names must match ${SECRET_NAME.source}, got ${JSON.stringify(name)}`);
  return `hako-secret:${name}`;
}

/**
 * Replaces placeholders in header values in place; returns the secrets used, or why the request
 * is refused. A value goes only into the headers its rule names: a placeholder in any other
 * header (a custom one the bound host might echo back) refuses the request.
 */
function injectSecrets(headers: http.OutgoingHttpHeaders, host: string, overTls: boolean, secrets: readonly SecretBinding[]): SecretBinding[] | string {
  const used = new Map<string, SecretBinding>();
  let problem: string | undefined;
  mapValues(headers, (value, header) => value.replace(PLACEHOLDER, (placeholder, name: string) => {
    const binding = secrets.find((s) => s.name === name);
    if (!binding || !hostAllowed(host, binding.hosts)) problem ??= `secret ${name} is not bound to ${host}`;
    else if (!binding.headers.includes(header)) problem ??= `secret ${name} may only be sent in the header ${binding.headers.join(' or ')}, not in ${header} (the owner names its headers in egress.json)`;
    else if (!overTls) problem ??= `secret ${name} would travel unencrypted: use an https:// URL (the proxy speaks TLS upstream)`;
    else { used.set(name, binding); return binding.value; }
    return placeholder;
  }));
  return problem ?? [...used.values()];
}

/** Applies fn to every header value, in place. */
function mapValues(headers: http.OutgoingHttpHeaders, fn: (value: string, header: string) => string): void {
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v === 'string') headers[k] = fn(v, k);
    else if (Array.isArray(v)) headers[k] = v.map((x) => fn(x, k));
  }
}

/** Replaces any secret value in text with its placeholder. */
function scrub(text: string, secrets: readonly SecretBinding[]): string {
  return secrets.reduce((t, s) => (s.value ? t.replaceAll(s.value, secretPlaceholder(s.name)) : t), text);
}

/** Streams a response body with injected secret values replaced by their placeholders, across chunk boundaries. */
class Redactor extends Transform {
  #pairs: { value: Buffer; mark: Buffer }[];
  #keep: number;
  #tail = Buffer.alloc(0);

  constructor(used: readonly SecretBinding[]) {
    super();
    this.#pairs = used.filter((s) => s.value).map((s) => ({ value: Buffer.from(s.value), mark: Buffer.from(secretPlaceholder(s.name)) }));
    this.#keep = Math.max(0, ...this.#pairs.map((p) => p.value.length - 1));
  }

  _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const buf = Buffer.concat([this.#tail, chunk]);
    let i = 0;
    for (;;) {
      let hit: { at: number; value: Buffer; mark: Buffer } | undefined;
      for (const p of this.#pairs) {
        const at = buf.indexOf(p.value, i);
        if (at >= 0 && (!hit || at < hit.at)) hit = { at, ...p };
      }
      if (!hit) break;
      this.push(Buffer.concat([buf.subarray(i, hit.at), hit.mark]));
      i = hit.at + hit.value.length;
    }
    const cut = Math.max(i, buf.length - this.#keep); // hold back what could start a value split across chunks
    if (cut > i) this.push(buf.subarray(i, cut));
    this.#tail = buf.subarray(cut);
    done();
  }

  _flush(done: TransformCallback): void {
    if (this.#tail.length) this.push(this.#tail);
    done();
  }
}

// ---- Forwarding -------------------------------------------------------------------------------------

const IDLE_MS = 10 * 60_000;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

/** Headers minus hop-by-hop ones (including those the Connection header names) and Proxy-*. */
export function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k) && !k.startsWith('proxy-')) out[k] = v;
  }
  return out;
}

/** False when the audit callback broke its contract and threw: the caller then refuses. */
function record(opts: EgressOptions, d: DecisionRecord): boolean {
  try { opts.onDecision(d); return true; } catch { return false; }
}

function reply(res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent || res.destroyed) { res.destroy(); return; }
  const body = `${text}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Parses an absolute-form target; a string is the reason to refuse it. */
function parseTarget(raw: string): { url: URL; port: number } | string {
  if (!/^https?:\/\//i.test(raw)) return 'the proxy forwards only absolute http:// or https:// URLs';
  const authority = raw.slice(raw.indexOf('//') + 2).split(/[/?#]/, 1)[0] ?? '';
  if (authority.includes('@')) return 'URLs with user info are refused';
  let url: URL;
  try { url = new URL(raw); } catch { return 'malformed URL'; }
  if (!url.hostname) return 'the URL has no host';
  return { url, port: url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80 };
}

/**
 * Handles an absolute-form request (http:// or https:// URL): decide, inject secrets, forward, stream
 * the response back. Answers 403 with a plain-text reason on refusal, 502 when the upstream fails.
 */
export function handleHttp(req: http.IncomingMessage, res: http.ServerResponse, opts: EgressOptions): void {
  forwardHttp(req, res, opts).catch(() => reply(res, 502, 'hako egress failed'));
}

async function forwardHttp(req: http.IncomingMessage, res: http.ServerResponse, opts: EgressOptions): Promise<void> {
  const method = req.method ?? 'GET';
  const refuse = (d: Refusal) => { record(opts, { ...d, method, kind: 'http' }); reply(res, 403, `hako refused ${d.host}:${d.port}: ${d.reason}`); };
  const target = parseTarget(req.url ?? '');
  if (typeof target === 'string') return refuse(refusal('', 0, target));
  const { url, port } = target;
  const pre = precheck(url.hostname, port, opts);
  if ('reason' in pre) return refuse(pre);
  const overTls = url.protocol === 'https:';
  const headers = endToEnd(req.headers);
  const used = injectSecrets(headers, pre.host, overTls, opts.secrets);
  if (typeof used === 'string') return refuse(refusal(pre.host, port, used));
  const d = pre.literal ? { allowed: true as const, host: pre.host, port, address: pre.host } : await resolve(pre.host, port, opts);
  if (!d.allowed) return refuse(d);
  if (!record(opts, { ...d, method, kind: 'http', ...(used.length ? { secrets: used.map((s) => s.name) } : {}) })) {
    return reply(res, 500, 'hako could not record the egress decision, so it refused the request');
  }
  if (res.destroyed) return;
  headers.host = url.host;
  if (req.headers['transfer-encoding'] && !req.headers['content-length']) headers['transfer-encoding'] = 'chunked'; // keep the body framed
  if (used.length) headers['accept-encoding'] = 'identity'; // so the Redactor sees plain bytes

  const createConnection = () => overTls
    ? (opts.tlsConnect ?? defaultTlsConnect)(d.address, port, pre.host)
    : (opts.connect ?? defaultConnect)(d.address, port);
  const fail = (err: Error) => reply(res, 502, scrub(`hako could not reach ${pre.host}:${port}: ${err.message}`, opts.secrets));
  let upstream: http.ClientRequest;
  try {
    upstream = http.request({ method, path: url.pathname + url.search, headers, createConnection }, (up) => {
      const out = endToEnd(up.headers);
      const done = () => {}; // a failure mid-body has already destroyed res: nothing left to tell
      if (!used.length) {
        res.writeHead(up.statusCode ?? 502, out);
        return pipeline(up, res, done);
      }
      // The body must be seen as plain bytes to be redacted, even when the upstream compressed
      // it although it was asked not to; an encoding hako cannot undo is not passed on at all.
      const decoders = decodersFor(up.headers['content-encoding']);
      if (typeof decoders === 'string') {
        up.destroy();
        return reply(res, 502, `hako withheld the answer of ${pre.host}: ${decoders}`);
      }
      mapValues(out, (v) => scrub(v, used));
      delete out['content-length']; // redaction may change the length
      delete out['content-encoding'];
      res.writeHead(up.statusCode ?? 502, out);
      pipeline([up, ...decoders, new Redactor(used), res], done);
    });
  } catch (err) {
    return fail(err as Error);
  }
  const onAbort = () => upstream.destroy(new Error('the proxy is shutting down'));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  res.on('close', () => {
    opts.signal?.removeEventListener('abort', onAbort);
    if (!res.writableFinished) upstream.destroy();
  });
  upstream.setTimeout(IDLE_MS, () => upstream.destroy(new Error('upstream idle for 10 minutes')));
  upstream.on('error', fail);
  req.pipe(upstream);
}

/** Streams that undo a Content-Encoding (last applied, first undone), or why it cannot be undone. */
function decodersFor(header: string | undefined): Transform[] | string {
  const codings = (header ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c && c !== 'identity');
  const decoders: Transform[] = [];
  for (const coding of codings.reverse()) {
    if (coding === 'gzip' || coding === 'x-gzip' || coding === 'deflate') decoders.push(zlib.createUnzip());
    else if (coding === 'br') decoders.push(zlib.createBrotliDecompress());
    else if (coding === 'zstd' && 'createZstdDecompress' in zlib) decoders.push((zlib as unknown as { createZstdDecompress(): Transform }).createZstdDecompress());
    else return `it is encoded as ${JSON.stringify(coding.slice(0, 40))}, which hako cannot decode to keep the secret it injected out of the answer`;
  }
  return decoders;
}

const defaultConnect = (address: string, port: number) => net.connect({ host: address, port });
const defaultTlsConnect = (address: string, port: number, servername: string) =>
  // SNI cannot carry an IP; without servername, tls checks the certificate against host (the IP).
  tls.connect({ host: address, port, ...(net.isIP(servername) ? {} : { servername }), ALPNProtocols: ['http/1.1'] });

// ---- Tunnels ---------------------------------------------------------------------------------------

function answer(socket: Duplex, status: string, text: string): void {
  const body = `${text}\n`;
  socket.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/**
 * Handles CONNECT host:port: decide; on allow, connect to the checked address and pipe both ways
 * after "200 Connection Established"; on refusal answer 403 with the reason and close. A tunnel is
 * opaque (TLS end to end), so no secret can be injected into it: secrets need the absolute-form
 * https:// "gateway" request, where the proxy itself speaks TLS upstream.
 */
export function handleConnect(req: http.IncomingMessage, clientSocket: Duplex, head: Buffer, opts: EgressOptions): void {
  clientSocket.on('error', () => clientSocket.destroy());
  tunnel(req, clientSocket, head, opts).catch(() => clientSocket.destroy());
}

async function tunnel(req: http.IncomingMessage, client: Duplex, head: Buffer, opts: EgressOptions): Promise<void> {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/@[\]?#]+):(\d{1,5})$/.exec(req.url ?? '');
  let host = '';
  try { host = m?.[1] ? new URL(`http://${m[1]}`).hostname : ''; } catch { /* refused below */ }
  const port = Number(m?.[2] ?? 0);
  const d = host ? await decide(host, port, opts) : refusal('', port, 'CONNECT needs host:port');
  const recorded = record(opts, { ...d, method: 'CONNECT', kind: 'connect' });
  if (!d.allowed) return answer(client, '403 Forbidden', `hako refused ${d.host}:${d.port}: ${d.reason}`);
  if (!recorded) return answer(client, '500 Internal Server Error', 'hako could not record the egress decision, so it refused the tunnel');
  if (client.destroyed) return;

  let upstream: net.Socket;
  try {
    upstream = (opts.connect ?? defaultConnect)(d.address, port);
  } catch (err) {
    return answer(client, '502 Bad Gateway', `hako could not reach ${d.host}:${port}: ${(err as Error).message}`);
  }
  let established = false;
  const close = () => { upstream.destroy(); client.destroy(); };
  if (opts.signal?.aborted) return close();
  opts.signal?.addEventListener('abort', close, { once: true });
  upstream.on('close', () => {
    opts.signal?.removeEventListener('abort', close);
    if (established) client.destroy();
    else if (!client.destroyed && !client.writableEnded) answer(client, '502 Bad Gateway', `hako could not reach ${d.host}:${port}`);
  });
  client.on('close', () => upstream.destroy());
  upstream.setTimeout(IDLE_MS, close);
  upstream.on('error', (err) => {
    if (established) return close();
    answer(client, '502 Bad Gateway', `hako could not reach ${d.host}:${port}: ${err.message}`);
  });
  const open = () => {
    established = true;
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  };
  if (upstream.connecting) upstream.once('connect', open);
  else if (!upstream.destroyed) open();
}
