// A small client of the Graph API's WhatsApp Cloud endpoints over fetch, on the documented
// wire format (Meta maintains no Node client library for the Cloud API: see SKILL.md):
// JSON calls, the multipart media upload and the media download. A refusal becomes a
// GraphError carrying Graph's error body ({error:{message,type,code,error_subcode,fbtrace_id}}),
// which `classify` turns into what it means for the channel.
// Invariants: the access token travels only in the Authorization header, and only to the
// Graph API base or to an https media URL it gave; no error text contains it; a download
// never holds more than its limit in memory.

import type { CloudConfig } from './config.ts';

export class GraphError extends Error {
  override name = 'GraphError';
  readonly status: number;
  readonly code: number | undefined;
  readonly subcode: number | undefined;
  constructor(status: number, body: { message?: unknown; code?: unknown; error_subcode?: unknown; fbtrace_id?: unknown } | undefined) {
    const code = typeof body?.code === 'number' ? body.code : undefined;
    const subcode = typeof body?.error_subcode === 'number' ? body.error_subcode : undefined;
    const message = typeof body?.message === 'string' ? body.message.slice(0, 300) : 'no error body';
    const trace = typeof body?.fbtrace_id === 'string' ? `, fbtrace_id ${body.fbtrace_id.slice(0, 40)}` : '';
    super(`HTTP ${status}${code !== undefined ? `, Graph error ${code}${subcode !== undefined ? `/${subcode}` : ''}` : ''}: ${message}${trace}`);
    this.status = status;
    this.code = code;
    this.subcode = subcode;
  }
}

export class TooBig extends Error {
  override name = 'TooBig';
}

export type Failure =
  /** The token expired or was revoked (HTTP 401 / Graph error 190): nothing works until the owner replaces it. */
  | { readonly kind: 'unauthorized'; readonly text: string }
  /** A throughput or rate limit (HTTP 429; Graph errors 4, 80007, 130429, 131056): wait and send again. */
  | { readonly kind: 'rate'; readonly text: string }
  /** No answer, a dropped connection, a 5xx: try again later. */
  | { readonly kind: 'network'; readonly text: string }
  /** The call was cancelled (the channel stops). */
  | { readonly kind: 'aborted'; readonly text: string }
  /** Any other refusal of this call (a number not on WhatsApp, a bad parameter, …). */
  | { readonly kind: 'refused'; readonly text: string };

const RATE_CODES = new Set([4, 80007, 130429, 131056]);

export function classify(err: unknown): Failure {
  if (err instanceof GraphError) {
    if (err.status === 401 || err.code === 190) return { kind: 'unauthorized', text: err.message };
    if (err.status === 429 || (err.code !== undefined && RATE_CODES.has(err.code))) return { kind: 'rate', text: err.message };
    if (err.status >= 500) return { kind: 'network', text: err.message };
    return { kind: 'refused', text: err.message };
  }
  if (err instanceof Error && err.name === 'AbortError') return { kind: 'aborted', text: 'cancelled' };
  if (err instanceof Error) return { kind: 'network', text: `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` };
  return { kind: 'network', text: String(err) };
}

/** The owner's line for a refused token. */
export const TOKEN_REFUSED = 'whatsapp: the Cloud API access token was refused (Graph error 190): it expired or was revoked; put a current token (a System User token, which does not expire) in WHATSAPP_ACCESS_TOKEN in ~/.config/hako/secrets.env and restart hako';

export interface GraphOptions {
  readonly graphUrl: string;
  readonly token: string;
  readonly signal: AbortSignal;
}

export class Graph {
  #o: GraphOptions;

  constructor(o: GraphOptions) {
    this.#o = o;
  }

  /** A JSON call (`path` after the versioned base, e.g. `/1234/messages`); rejects with GraphError or a network error. */
  async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
    // A FormData body sets its own multipart content type, boundary included.
    const asJson = body !== undefined && !(body instanceof FormData);
    const init: RequestInit = { method, headers: this.#headers(asJson ? { 'content-type': 'application/json' } : {}), signal: this.#o.signal, redirect: 'error' };
    if (body !== undefined) init.body = asJson ? JSON.stringify(body) : (body as FormData);
    const res = await fetch(`${this.#o.graphUrl}${path}`, init);
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = undefined;
    }
    if (!res.ok) throw new GraphError(res.status, (json as { error?: Record<string, unknown> } | undefined)?.error);
    if (!json || typeof json !== 'object') throw new GraphError(res.status, { message: 'the answer was not JSON' });
    return json as Record<string, unknown>;
  }

  /** Fetches a media file by its id (GET /{media-id}, then its URL), never more than `maxBytes`. */
  async media(id: string, maxBytes: number): Promise<{ data: Uint8Array; mime: string }> {
    const over = () => new TooBig(`over the ${maxBytes}-byte limit (HAKO_ATTACHMENT_MAX_BYTES)`);
    if (!/^[\w.-]{1,100}$/.test(id)) throw new Error('the media id is malformed');
    const info = await this.call('GET', `/${id}`);
    if (typeof info.file_size === 'number' && info.file_size > maxBytes) throw over();
    const url = this.#mediaUrl(info.url);
    const res = await fetch(url, { headers: this.#headers({}), signal: this.#o.signal, redirect: 'error' });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new GraphError(res.status, { message: 'the media download was refused' });
    }
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > maxBytes) {
      await res.body.cancel();
      throw over();
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += chunk.length;
      // Leaving the loop by a throw cancels the rest of the download.
      if (total > maxBytes) throw over();
      chunks.push(chunk);
    }
    const mime = typeof info.mime_type === 'string' ? info.mime_type : res.headers.get('content-type') ?? 'application/octet-stream';
    return { data: Buffer.concat(chunks, total), mime };
  }

  /** The token goes with the download only to https, or to the Graph base's own origin (a local emulator). */
  #mediaUrl(raw: unknown): URL {
    let url: URL;
    try {
      url = new URL(String(raw));
    } catch {
      throw new Error('Graph gave no usable media URL');
    }
    if (url.protocol !== 'https:' && url.origin !== new URL(this.#o.graphUrl).origin) throw new Error(`Graph gave a media URL that is not https (${url.protocol}); it was not fetched`);
    return url;
  }

  #headers(more: Record<string, string>): Record<string, string> {
    return { authorization: `Bearer ${this.#o.token}`, ...more };
  }
}

/** The doctor check: whether the token can read the phone number; undefined when it can. */
export async function checkCloud(config: CloudConfig): Promise<string | undefined> {
  const graph = new Graph({ graphUrl: config.graphUrl, token: config.accessToken, signal: AbortSignal.timeout(15_000) });
  try {
    await graph.call('GET', `/${config.phoneNumberId}?fields=display_phone_number,verified_name`);
    return undefined;
  } catch (err) {
    const f = classify(err);
    if (f.kind === 'unauthorized') return TOKEN_REFUSED;
    if (f.kind === 'network' || f.kind === 'aborted') return `whatsapp: cannot reach the Graph API at ${config.graphUrl} (${f.text}): check the network, or WHATSAPP_GRAPH_URL`;
    return `whatsapp: Graph refused to read phone number ${config.phoneNumberId} (${f.text}): check WHATSAPP_PHONE_NUMBER_ID and that the token's app has the whatsapp_business_messaging permission`;
  }
}
