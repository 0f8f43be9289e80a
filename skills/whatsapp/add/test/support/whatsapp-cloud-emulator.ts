// A local WhatsApp Cloud API (Graph API) on 127.0.0.1 for tests, spoken to over real HTTP
// exactly as graph.facebook.com is: `/<version>/<phone-number-id>/messages` (text, image,
// document, the read mark with its typing indicator), `/<version>/<phone-number-id>/media`
// (multipart upload), `/<version>/<media-id>` and the media download URL it hands out (both
// with the Bearer token), `/<version>/<phone-number-id>` (the number's profile), with Graph's
// error body `{error:{message,type,code,error_subcode,fbtrace_id}}` and its codes (190 for
// a revoked token, 130429 / 80007 for throughput limits, 100 for a bad parameter). As Meta
// does, it posts users' messages to a webhook URL, signed with the app secret
// (X-Hub-Signature-256), and tells what each user's chat shows.
//
// Invariant: nothing here knows hako; it only speaks the Cloud API.

import http from 'node:http';
import { once } from 'node:events';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export const GRAPH_VERSION = 'v24.0';
const TEXT_LIMIT = 4096;
const CAPTION_LIMIT = 1024;

/** A message the business number sent, as the user's chat shows it. */
export interface WaSent {
  readonly id: string;
  readonly to: string;
  readonly type: 'text' | 'image' | 'document';
  /** The text, or the caption of a file. */
  readonly text: string;
  /** The message it quotes (context.message_id). */
  readonly replyTo?: string;
  readonly file?: { readonly name?: string; readonly mime: string; readonly data: Buffer };
}

export interface WaCall { readonly method: string; readonly path: string; readonly json?: Record<string, unknown> }

interface Media { id: string; mime: string; data: Buffer; name?: string }
interface Fault { paths?: RegExp; left: number; status: number; error: Record<string, unknown> }

/** `sha256=` + the hex HMAC-SHA256 of the raw body with the app secret: Meta's X-Hub-Signature-256. */
export function signWebhook(body: Buffer | string, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
}

export interface InboundSpec {
  readonly from: string;
  readonly name?: string;
  readonly text?: string;
  /** Unix seconds; now when omitted. */
  readonly timestamp?: number;
  readonly id?: string;
  readonly media?: { readonly kind: 'image' | 'document' | 'audio' | 'video'; readonly id: string; readonly mime: string; readonly filename?: string };
}

/** A `messages` notification as Meta posts it for one phone number. */
export function webhookPayload(phoneNumberId: string, displayNumber: string, messages: readonly (InboundSpec & { id: string })[], statuses: readonly Record<string, unknown>[] = []): Record<string, unknown> {
  const contacts = [...new Map(messages.map((m) => [m.from, { profile: { name: m.name ?? '' }, wa_id: m.from }])).values()];
  return {
    object: 'whatsapp_business_account',
    entry: [{
      id: '102290129340398',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: displayNumber, phone_number_id: phoneNumberId },
          ...(contacts.length ? { contacts } : {}),
          ...(messages.length ? { messages: messages.map(wireMessage) } : {}),
          ...(statuses.length ? { statuses } : {}),
        },
      }],
    }],
  };
}

function wireMessage(m: InboundSpec & { id: string }): Record<string, unknown> {
  const base = { from: m.from, id: m.id, timestamp: String(m.timestamp ?? Math.floor(Date.now() / 1000)) };
  if (!m.media) return { ...base, type: 'text', text: { body: m.text ?? '' } };
  const { kind, id, mime, filename } = m.media;
  return { ...base, type: kind, [kind]: { id, mime_type: mime, sha256: 'x', ...(m.text ? { caption: m.text } : {}), ...(filename ? { filename } : {}) } };
}

function graphError(status: number, code: number, message: string, extra: Record<string, unknown> = {}): Fault['error'] & { status: number } {
  return { status, message, type: 'OAuthException', code, ...extra, fbtrace_id: `A${randomBytes(10).toString('base64url')}` };
}

export class WhatsAppCloudEmulator {
  readonly token = `EAAG${randomBytes(48).toString('base64url')}`;
  readonly appSecret = randomBytes(16).toString('hex');
  readonly verifyToken = `verify-${randomBytes(8).toString('hex')}`;
  readonly phoneNumberId = '106540352242922';
  readonly displayNumber = '15550783881';
  readonly calls: WaCall[] = [];
  /** Where Meta posts notifications: hako's /whatsapp/webhook. */
  webhookUrl: string | undefined;
  #server: http.Server;
  #port = 0;
  #revoked = false;
  #sent: WaSent[] = [];
  #reads: { messageId: string; typing: boolean }[] = [];
  #inbound = new Set<string>();
  #media = new Map<string, Media>();
  #faults: Fault[] = [];
  #waiters: (() => void)[] = [];
  #n = 0;

  private constructor() {
    this.#server = http.createServer((req, res) => void this.#serve(req, res));
  }

  static async start(): Promise<WhatsAppCloudEmulator> {
    const emu = new WhatsAppCloudEmulator();
    emu.#server.listen(0, '127.0.0.1');
    await once(emu.#server, 'listening');
    emu.#port = (emu.#server.address() as AddressInfo).port;
    return emu;
  }

  get graphUrl(): string {
    return `http://127.0.0.1:${this.#port}/${GRAPH_VERSION}`;
  }

  /** The settings a host needs for this number. */
  env(): Record<string, string> {
    return {
      WHATSAPP_ACCESS_TOKEN: this.token, WHATSAPP_PHONE_NUMBER_ID: this.phoneNumberId,
      WHATSAPP_APP_SECRET: this.appSecret, WHATSAPP_VERIFY_TOKEN: this.verifyToken, WHATSAPP_GRAPH_URL: this.graphUrl,
    };
  }

  // --- what users see ----------------------------------------------------------------

  sent(to?: string): WaSent[] {
    return this.#sent.filter((s) => to === undefined || s.to === to);
  }

  /** The texts as sent, markup included. */
  texts(to: string): string[] {
    return this.sent(to).map((s) => s.text);
  }

  /** The texts as the user's WhatsApp shows them: its markup applied, the markers gone. */
  shown(to: string): string[] {
    return this.texts(to).map(render);
  }

  /** The read marks, each with whether it showed the typing indicator. */
  reads(): { messageId: string; typing: boolean }[] {
    return [...this.#reads];
  }

  callsTo(path: RegExp): WaCall[] {
    return this.calls.filter((c) => path.test(c.path));
  }

  // --- what users send ---------------------------------------------------------------

  /** A media file a user sent, kept as Meta keeps it; its id for a message's `media`. */
  addMedia(data: Buffer, mime: string, name?: string): string {
    const id = String(1_000_000_000_000 + ++this.#n);
    this.#media.set(id, { id, mime, data, ...(name ? { name } : {}) });
    return id;
  }

  /** A user's message as Meta would post it; `post` delivers it. */
  inbound(spec: InboundSpec): { id: string; body: Buffer } {
    const id = spec.id ?? `wamid.${randomBytes(18).toString('base64url')}`;
    this.#inbound.add(id);
    return { id, body: Buffer.from(JSON.stringify(webhookPayload(this.phoneNumberId, this.displayNumber, [{ ...spec, id }]))) };
  }

  /** Posts a body to the webhook as Meta does: signed with the app secret unless `signature` says otherwise. */
  async post(body: Buffer, signature: string | null = signWebhook(body, this.appSecret)): Promise<{ status: number; text: string }> {
    if (!this.webhookUrl) throw new Error('emulator: set webhookUrl first');
    const res = await fetch(this.webhookUrl, {
      method: 'POST', body: new Uint8Array(body),
      headers: { 'content-type': 'application/json', 'user-agent': 'facebookexternalua', ...(signature !== null ? { 'x-hub-signature-256': signature } : {}) },
    });
    return { status: res.status, text: await res.text() };
  }

  /** A user's message, delivered; rejects unless the webhook answered 200. */
  async message(spec: InboundSpec): Promise<{ id: string }> {
    const m = this.inbound(spec);
    const r = await this.post(m.body);
    if (r.status !== 200) throw new Error(`emulator: the webhook answered ${r.status}: ${r.text}`);
    return { id: m.id };
  }

  async waitUntil(done: () => boolean, what: () => string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`emulator: waited ${timeoutMs} ms for ${what()}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.#waiters.push(() => { clearTimeout(timer); r(); });
      });
    }
  }

  // --- faults ------------------------------------------------------------------------

  /** The next `calls` calls (to paths matching `paths`, or any) answer 429 with a throughput error (130429, or 80007). */
  rateLimit(opts: { calls: number; paths?: RegExp; code?: 130429 | 80007 }): void {
    const code = opts.code ?? 130429;
    const message = code === 130429 ? '(#130429) Rate limit hit' : '(#80007) There have been too many calls to this WhatsApp Business account.';
    this.#faults.push({ ...(opts.paths ? { paths: opts.paths } : {}), left: opts.calls, status: 429, error: graphError(429, code, message, { error_data: { messaging_product: 'whatsapp', details: 'Cloud API message throughput has been reached.' } }) });
  }

  /** The next send of a message is refused: 400, (#131030) the recipient is not in the test number's allowed list. */
  refuseNext(): void {
    this.#faults.push({ paths: /\/messages$/, left: 1, status: 400, error: graphError(400, 131030, '(#131030) Recipient phone number not in allowed list', { error_data: { messaging_product: 'whatsapp', details: 'Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again.' } }) });
  }

  /** The owner revoked the token (or it expired): every call answers 401, Graph error 190. */
  revokeToken(): void {
    this.#revoked = true;
  }

  async close(): Promise<void> {
    const closed = once(this.#server, 'close');
    this.#server.close();
    this.#server.closeAllConnections();
    await closed;
  }

  // --- the Graph API -----------------------------------------------------------------

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const type = req.headers['content-type'] ?? '';
    let json: Record<string, unknown> | undefined;
    if (type.startsWith('application/json')) {
      try { json = JSON.parse(body.toString('utf8')); } catch { json = undefined; }
    }
    this.calls.push({ method: req.method ?? 'GET', path: url.pathname, ...(json ? { json } : {}) });
    try {
      const answer = await this.#route(req, url, body, json);
      if (answer instanceof Download) {
        res.writeHead(200, { 'content-type': answer.media.mime, 'content-length': answer.media.data.length });
        res.end(answer.media.data);
      } else send(res, 200, answer);
    } catch (err) {
      if (err instanceof Refusal) send(res, err.status, { error: err.error });
      else send(res, 500, { error: graphError(500, 1, `An unknown error occurred: ${(err as Error).message}`) });
    } finally {
      for (const w of this.#waiters.splice(0)) w();
    }
  }

  async #route(req: http.IncomingMessage, url: URL, body: Buffer, json: Record<string, unknown> | undefined): Promise<Record<string, unknown> | Download> {
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!auth) throw new Refusal(400, graphError(400, 2500, 'An active access token must be used to query information about the current user.'));
    if (auth !== this.token) throw new Refusal(401, graphError(401, 190, 'Invalid OAuth access token - Cannot parse access token'));
    if (this.#revoked) throw new Refusal(401, graphError(401, 190, 'Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.', { error_subcode: 460 }));
    const fault = this.#faults.find((f) => f.left > 0 && (!f.paths || f.paths.test(url.pathname)));
    if (fault) {
      fault.left--;
      this.#faults = this.#faults.filter((f) => f.left > 0);
      throw new Refusal(fault.status, fault.error);
    }
    if (url.pathname === '/whatsapp_business/attachments/') {
      const media = this.#media.get(url.searchParams.get('mid') ?? '');
      if (!media) throw new Refusal(404, graphError(404, 100, 'Media not found'));
      return new Download(media);
    }
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== GRAPH_VERSION) throw new Refusal(400, graphError(400, 2635, `Unknown API version in ${url.pathname}`));
    const [, id, edge] = parts;
    if (req.method === 'GET' && id && !edge) return this.#object(id);
    if (req.method === 'POST' && id === this.phoneNumberId && edge === 'messages') return this.#message(json);
    if (req.method === 'POST' && id === this.phoneNumberId && edge === 'media') return this.#upload(req, body);
    throw new Refusal(400, graphError(400, 100, `Unsupported ${req.method} request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`, { error_subcode: 33 }));
  }

  #object(id: string): Record<string, unknown> {
    if (id === this.phoneNumberId) return { display_phone_number: `+1 555-078-3881`, verified_name: 'Hako Test', id };
    const media = this.#media.get(id);
    if (!media) throw new Refusal(400, graphError(400, 100, `Unsupported get request. Object with ID '${id}' does not exist.`, { error_subcode: 33 }));
    return {
      messaging_product: 'whatsapp',
      url: `http://127.0.0.1:${this.#port}/whatsapp_business/attachments/?mid=${id}&ext=${Date.now()}&hash=${randomBytes(6).toString('hex')}`,
      mime_type: media.mime, sha256: createHash('sha256').update(media.data).digest('hex'), file_size: media.data.length, id,
    };
  }

  #message(json: Record<string, unknown> | undefined): Record<string, unknown> {
    const bad = (what: string) => new Refusal(400, graphError(400, 100, `(#100) ${what}`));
    if (!json || json.messaging_product !== 'whatsapp') throw bad('The parameter messaging_product is required.');
    if (json.status === 'read') {
      const messageId = String(json.message_id ?? '');
      if (!this.#inbound.has(messageId)) throw bad('Invalid parameter: message_id');
      const typing = (json.typing_indicator as { type?: unknown } | undefined)?.type === 'text';
      this.#reads.push({ messageId, typing });
      return { success: true };
    }
    const to = String(json.to ?? '');
    if (!/^\+?\d{6,20}$/.test(to)) throw bad('Invalid parameter: to');
    const replyTo = (json.context as { message_id?: unknown } | undefined)?.message_id;
    const quote = typeof replyTo === 'string' ? { replyTo } : {};
    const id = `wamid.${randomBytes(18).toString('base64url')}`;
    const type = json.type ?? 'text';
    if (type === 'text') {
      const body = (json.text as { body?: unknown } | undefined)?.body;
      if (typeof body !== 'string' || body === '') throw bad("The parameter text['body'] is required.");
      if (body.length > TEXT_LIMIT) throw bad(`Param text['body'] must be at most ${TEXT_LIMIT} characters long.`);
      this.#sent.push({ id, to: to.replace(/^\+/, ''), type: 'text', text: body, ...quote });
    } else if (type === 'image' || type === 'document') {
      const part = json[type] as { id?: unknown; caption?: unknown; filename?: unknown } | undefined;
      const media = this.#media.get(String(part?.id ?? ''));
      if (!media) throw bad(`Invalid parameter: ${type}['id']`);
      const caption = typeof part?.caption === 'string' ? part.caption : '';
      if (caption.length > CAPTION_LIMIT) throw bad(`Param ${type}['caption'] must be at most ${CAPTION_LIMIT} characters long.`);
      const name = typeof part?.filename === 'string' ? part.filename : media.name;
      this.#sent.push({ id, to: to.replace(/^\+/, ''), type, text: caption, ...quote, file: { mime: media.mime, data: media.data, ...(name ? { name } : {}) } });
    } else {
      throw bad(`Invalid parameter: type ${String(type)}`);
    }
    return { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: to.replace(/^\+/, '') }], messages: [{ id }] };
  }

  async #upload(req: http.IncomingMessage, body: Buffer): Promise<Record<string, unknown>> {
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('multipart/form-data')) throw new Refusal(400, graphError(400, 100, '(#100) The parameter file is required.'));
    const form = await new Request('http://127.0.0.1/', { method: 'POST', headers: { 'content-type': type }, body: new Uint8Array(body) }).formData();
    if (form.get('messaging_product') !== 'whatsapp') throw new Refusal(400, graphError(400, 100, '(#100) The parameter messaging_product is required.'));
    const file = form.get('file');
    if (!(file instanceof File)) throw new Refusal(400, graphError(400, 100, '(#100) The parameter file is required.'));
    const mime = String(form.get('type') ?? file.type);
    const id = this.addMedia(Buffer.from(await file.arrayBuffer()), mime, file.name);
    return { id };
  }
}

class Download {
  readonly media: Media;
  constructor(media: Media) {
    this.media = media;
  }
}

class Refusal extends Error {
  readonly status: number;
  readonly error: Record<string, unknown>;
  constructor(status: number, error: Record<string, unknown> & { status?: number }) {
    super(String(error.message));
    this.status = status;
    const { status: _s, ...rest } = error;
    this.error = rest;
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text), 'x-fb-trace-id': randomBytes(8).toString('base64url') });
  res.end(text);
}

/**
 * WhatsApp's rendering of its markup, as the app shows a message: ```monospace``` and
 * `code`, then *bold*, _italic_ and ~strike~ — a marker pair counts only with no space
 * inside its ends, outside a word.
 */
export function render(text: string): string {
  let out = text.replace(/```([\s\S]+?)```/g, '$1').replace(/`([^`\n]+)`/g, '$1');
  out = out.replace(/(?<![\p{L}\p{N}*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\p{L}\p{N}*])/gu, '$1');
  out = out.replace(/(?<![\p{L}\p{N}_])_(?=[^\s_])([^_\n]*?[^\s_])_(?![\p{L}\p{N}_])/gu, '$1');
  out = out.replace(/(?<![\p{L}\p{N}~])~(?=[^\s~])([^~\n]*?[^\s~])~(?![\p{L}\p{N}~])/gu, '$1');
  return out;
}

/** A 1x1 JPEG. */
export const TINY_JPEG = Buffer.from('ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3ffd9', 'hex');
