// The WhatsApp Web channel (a personal number linked as a device, through Baileys): the
// connection's lifecycle (pairing by QR code or pairing code, reconnect with backoff, a
// logout that ends it for good), the intake of messages (intake.ts) and the sends.
// States: new → connecting ⇄ open, → waiting (backoff) → connecting …, → loggedOut, →
// stopped. The socket comes from a factory, so the tests drive the channel with recorded
// Baileys event sequences; createWhatsAppWeb wires the real Baileys, imported lazily.
// Invariants: the QR code and the pairing code go to the terminal only, never to the log;
// one event at a time is taken, in order; a logout is one error line, not a crash loop.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AnyMessageContent, BaileysEventMap, UserFacingSocketConfig, WAMessage } from 'baileys';
import type { Channel, ChannelContext, ChannelDeps, Outbound } from '../../../core/channel.ts';
import type { Logger } from '../../../core/log.ts';
import { splitText } from '../../split.ts';
import { markdownToWhatsApp } from '../format.ts';
import { loadAuthState } from './auth.ts';
import { webConfig, type WebConfig } from './config.ts';
import { addressJid, meOf } from './inbound.ts';
import { Intake } from './intake.ts';
import { HighWater } from './mark.ts';
import { TooBig, type MediaDownload, type SocketFactory, type WaSocket } from './socket.ts';

export const TEXT_LIMIT = 4096;
/** WhatsApp shows "typing…" for about 25 s after each `composing`. */
const COMPOSING_EVERY_MS = 10_000;
const TYPING_AT_MOST_MS = 30 * 60 * 1000;
const CAPTION_LIMIT = 1024;
const IMAGE_MAX = 16 * 1024 * 1024;
/** Baileys' close codes (DisconnectReason) that decide what happens next. */
const LOGGED_OUT = 401;
const RESTART_REQUIRED = 515;
const CONNECTION_REPLACED = 440;
/** How long `start` waits for the first sign of the connection (open, a QR code, a close). */
const START_WAIT_MS = 20_000;

export function loggedOutLine(authDir: string): string {
  return `whatsapp: WhatsApp Web logged this device out (401): it was removed under Linked devices on the phone, or the login expired; remove ${authDir} and restart hako to pair again`;
}

type State =
  | { readonly kind: 'new' }
  | { readonly kind: 'connecting'; readonly sock: WaSocket; readonly failures: number; readonly since: number; readonly reason?: string }
  | { readonly kind: 'pairing'; readonly sock: WaSocket }
  | { readonly kind: 'open'; readonly sock: WaSocket }
  | { readonly kind: 'waiting'; readonly failures: number; readonly since: number; readonly reason: string; readonly timer: NodeJS.Timeout }
  | { readonly kind: 'loggedOut' }
  | { readonly kind: 'stopped' };

/** Where the pairing QR code and code are shown: the terminal `hako start` runs in. */
export interface Terminal {
  readonly isTTY: boolean;
  write(text: string): void;
}

export interface WebChannelOptions {
  readonly config: WebConfig;
  readonly connect: SocketFactory;
  readonly download: MediaDownload;
  /** Persists Baileys' credentials after a `creds.update`. Contract: may reject (logged). */
  readonly saveCreds: () => Promise<void>;
  readonly home: string;
  readonly log: Logger;
  readonly terminal: Terminal;
  /** Milliseconds to wait after `failures` closes in a row. */
  readonly backoff?: (failures: number) => number;
}

export class WhatsAppWebChannel implements Channel {
  readonly name = 'whatsapp';
  #o: WebChannelOptions;
  #state: State = { kind: 'new' };
  #intake: Intake | undefined;
  #started: (() => void) | undefined;
  #typers = new Set<() => void>();
  /** Outbound id → pieces already delivered, so a message sent again does not repeat them. */
  #delivered = new Map<string, number>();

  constructor(o: WebChannelOptions) {
    this.#o = o;
  }

  async start(ctx: ChannelContext): Promise<void> {
    if (this.#state.kind !== 'new') throw new Error(`whatsapp: the channel cannot start again (it is ${this.#state.kind})`);
    const { config, log } = this.#o;
    this.#intake = new Intake({ config, home: this.#o.home, log, download: this.#o.download, mark: new HighWater(config.statePath) }, ctx);
    const first = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, START_WAIT_MS);
      this.#started = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#connect(0, Date.now());
    await first;
    this.#started = undefined;
  }

  async send(m: Outbound): Promise<void> {
    const sock = this.#socket();
    const jid = addressJid(m.address);
    if (!jid) throw new Error(`whatsapp: ${JSON.stringify(m.address)} is not a WhatsApp address (a jid such as 4915112345678@s.whatsapp.net or 1203630…@g.us, or a phone number)`);
    const quoted = m.replyTo !== undefined ? this.#intake?.recent(m.replyTo) : undefined;
    if (m.file) return this.#sendFile(sock, jid, m, quoted);
    const text = markdownToWhatsApp(m.text) || m.text;
    await this.#sendPieces(sock, jid, m.id, splitText(text, TEXT_LIMIT), quoted);
  }

  typing(address: string): () => void {
    const jid = addressJid(address);
    if (!jid || this.#state.kind !== 'open') return () => {};
    const presence = (type: 'composing' | 'paused') => {
      const s = this.#state;
      if (s.kind !== 'open') return;
      s.sock.sendPresenceUpdate(type, jid).catch((err: unknown) => this.#o.log.debug('whatsapp: presence update failed', { chat: jid, type, reason: reason(err) }));
    };
    const timer = setInterval(() => presence('composing'), COMPOSING_EVERY_MS);
    const limit = setTimeout(() => stop(), TYPING_AT_MOST_MS);
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      clearTimeout(limit);
      this.#typers.delete(stop);
      presence('paused');
    };
    this.#typers.add(stop);
    presence('composing');
    return stop;
  }

  /** Resolves once every message received so far is taken (a drain promise for tests and shutdown). */
  idle(): Promise<void> {
    return this.#intake?.idle() ?? Promise.resolve();
  }

  problem(): string | undefined {
    const s = this.#state;
    switch (s.kind) {
      case 'loggedOut': return loggedOutLine(this.#o.config.authDir);
      case 'pairing': return this.#o.config.phone
        ? 'whatsapp: not paired yet: enter the pairing code shown in the terminal where hako start runs (WhatsApp → Linked devices → Link with phone number)'
        : 'whatsapp: not paired yet: scan the QR code shown in the terminal where hako start runs (WhatsApp → Linked devices → Link a device), or set WHATSAPP_WEB_PHONE for a pairing code';
      case 'waiting':
      case 'connecting':
        if (s.failures < 3) return undefined;
        return `whatsapp: WhatsApp Web has been disconnected since ${new Date(s.since).toISOString().slice(11, 19)} UTC (${s.reason ?? 'no answer'}); reconnecting`;
      default: return undefined;
    }
  }

  async stop(): Promise<void> {
    const s = this.#state;
    if (s.kind === 'stopped') return;
    this.#state = { kind: 'stopped' };
    for (const stop of [...this.#typers]) stop();
    this.#started?.();
    if (s.kind === 'waiting') clearTimeout(s.timer);
    if (s.kind === 'connecting' || s.kind === 'pairing' || s.kind === 'open') {
      try {
        await s.sock.end(undefined);
      } catch (err) {
        this.#o.log.debug('whatsapp: closing the connection failed', { reason: reason(err) });
      }
    }
    await this.#intake?.idle();
  }

  #connect(failures: number, since: number, why?: string): void {
    let sock: WaSocket;
    try {
      sock = this.#o.connect();
    } catch (err) {
      return this.#closed(failures + 1, since, `the connection could not be made: ${reason(err)}`);
    }
    this.#state = { kind: 'connecting', sock, failures, since, ...(why ? { reason: why } : {}) };
    // Each socket's events are taken only while it is the current one.
    const mine = () => {
      const s = this.#state;
      return (s.kind === 'connecting' || s.kind === 'pairing' || s.kind === 'open') && s.sock === sock;
    };
    sock.ev.on('connection.update', (u) => { if (mine()) this.#update(sock, u); });
    sock.ev.on('creds.update', () => {
      if (!mine()) return;
      this.#o.saveCreds().catch((err: unknown) => this.#o.log.error('whatsapp: the WhatsApp Web login could not be saved; pairing may be needed again after a restart', { dir: this.#o.config.authDir, reason: reason(err) }));
    });
    sock.ev.on('messages.upsert', (u) => { if (mine()) this.#intake!.take(u.messages, u.type, meOf(sock.user)); });
    sock.ev.on('messaging-history.set', (u) => { if (mine()) this.#intake!.take(u.messages, 'history', meOf(sock.user)); });
  }

  #update(sock: WaSocket, u: BaileysEventMap['connection.update']): void {
    const { log } = this.#o;
    if (u.qr) this.#pair(sock, u.qr);
    if (u.connection === 'open') {
      const s = this.#state;
      if (s.kind === 'connecting' && s.failures > 0) log.info('whatsapp: connected to WhatsApp Web again', { failures: s.failures });
      else log.info('whatsapp: connected to WhatsApp Web', { account: sock.user?.id ? sock.user.id.split(/[:@]/)[0] : 'unknown' });
      this.#state = { kind: 'open', sock };
      this.#started?.();
    }
    if (u.connection === 'close') {
      const err = u.lastDisconnect?.error;
      const code = (err as { output?: { statusCode?: unknown } } | undefined)?.output?.statusCode;
      const s = this.#state;
      const failures = s.kind === 'connecting' ? s.failures : 0;
      const since = s.kind === 'connecting' ? s.since : Date.now();
      this.#started?.();
      if (code === LOGGED_OUT) {
        this.#state = { kind: 'loggedOut' };
        log.error(loggedOutLine(this.#o.config.authDir));
        return;
      }
      // After pairing WhatsApp asks for a new connection at once: not a failure.
      if (code === RESTART_REQUIRED) return this.#connect(0, Date.now());
      const why = code === CONNECTION_REPLACED
        ? 'another WhatsApp Web session with this login took over (440): stop the other hako, or pair each with its own login'
        : `${err?.message ?? 'closed'}${typeof code === 'number' ? ` (${code})` : ''}`;
      this.#closed(failures + 1, since, why);
    }
  }

  #closed(failures: number, since: number, why: string): void {
    if (this.#state.kind === 'stopped') return;
    if (failures === 1) this.#o.log.warn('whatsapp: the WhatsApp Web connection closed; reconnecting with backoff', { reason: why });
    else this.#o.log.debug('whatsapp: the WhatsApp Web connection closed again', { failures, reason: why });
    const ms = (this.#o.backoff ?? backoff)(failures);
    const timer = setTimeout(() => {
      if (this.#state.kind === 'waiting') this.#connect(failures, since, why);
    }, ms);
    this.#state = { kind: 'waiting', failures, since, reason: why, timer };
  }

  /** Shows a QR code (or asks for a pairing code) in the terminal; the log gets only a hint. */
  #pair(sock: WaSocket, qr: string): void {
    const { config, log, terminal } = this.#o;
    const first = this.#state.kind !== 'pairing';
    this.#state = { kind: 'pairing', sock };
    this.#started?.();
    if (!terminal.isTTY) {
      if (first) log.warn('whatsapp: not paired yet, and hako start runs without a terminal to show the QR code or pairing code in: run hako start in a terminal once to pair');
      return;
    }
    if (config.phone) {
      if (!first) return;
      sock.requestPairingCode(config.phone).then((code) => {
        terminal.write(`\nWhatsApp: on the phone of +${config.phone}, open WhatsApp → Settings → Linked devices → Link a device → Link with phone number instead, and enter:\n\n    ${code}\n\n`);
        log.info('whatsapp: not paired yet: enter the pairing code shown in the terminal in WhatsApp → Linked devices');
      }, (err: unknown) => log.error('whatsapp: WhatsApp refused to give a pairing code; check WHATSAPP_WEB_PHONE (the number in international form), or unset it to pair by QR code', { reason: reason(err) }));
      return;
    }
    // To the terminal only: whoever scans it first becomes this linked device.
    void renderQr(qr).then((drawn) => {
      terminal.write(`\nWhatsApp: link hako as a device: open WhatsApp → Settings → Linked devices → Link a device, and scan this QR code (it changes every 20 s):\n\n${drawn}\n(if it does not scan, render this text with any QR tool: ${qr})\n\n`);
    }, () => {});
    if (first) log.info('whatsapp: not paired yet: scan the QR code shown in the terminal where hako start runs (WhatsApp → Linked devices), or set WHATSAPP_WEB_PHONE for a pairing code');
  }

  #socket(): WaSocket {
    const s = this.#state;
    if (s.kind === 'open') return s.sock;
    if (s.kind === 'loggedOut') throw new Error(loggedOutLine(this.#o.config.authDir));
    if (s.kind === 'new' || s.kind === 'stopped') throw new Error(`whatsapp: the channel is ${s.kind === 'new' ? 'not started' : 'stopped'}`);
    throw new Error(`whatsapp: not connected to WhatsApp Web (${s.kind}); the message is sent again later`);
  }

  async #sendPieces(sock: WaSocket, jid: string, id: string, pieces: readonly string[], quoted: WAMessage | undefined): Promise<void> {
    for (let k = this.#delivered.get(id) ?? 0; k < pieces.length; k++) {
      await this.#deliver(sock, jid, { text: pieces[k]! }, k === 0 ? quoted : undefined);
      this.#delivered.delete(id);
      this.#delivered.set(id, k + 1);
      if (this.#delivered.size > 500) this.#delivered.delete(this.#delivered.keys().next().value!);
    }
    this.#delivered.delete(id);
  }

  async #sendFile(sock: WaSocket, jid: string, m: Outbound, quoted: WAMessage | undefined): Promise<void> {
    const f = m.file!;
    const data = await readFile(f.path);
    const caption = markdownToWhatsApp(m.text) || m.text;
    const fits = caption.length <= CAPTION_LIMIT;
    const image = /\.(jpe?g|png|webp)$/i.test(f.name) && data.length <= IMAGE_MAX;
    const content: AnyMessageContent = image
      ? { image: data, ...(fits && caption ? { caption } : {}) }
      : { document: data, mimetype: mimeOf(f.name), fileName: f.name, ...(fits && caption ? { caption } : {}) };
    if ((this.#delivered.get(m.id) ?? 0) === 0) {
      await this.#deliver(sock, jid, content, quoted);
      this.#delivered.set(m.id, 1);
    }
    if (!fits) await this.#sendPieces(sock, jid, `${m.id}/caption`, splitText(caption, TEXT_LIMIT), undefined);
    this.#delivered.delete(m.id);
  }

  async #deliver(sock: WaSocket, jid: string, content: AnyMessageContent, quoted: WAMessage | undefined): Promise<void> {
    try {
      await sock.sendMessage(jid, content, quoted ? { quoted } : {});
    } catch (err) {
      throw new Error(`whatsapp: the message to ${jid} was not sent: ${reason(err)}`, { cause: err });
    }
  }
}

/** 1 s, 2 s, 4 s … at most 60 s, ±20 % so restarts spread out. */
export function backoff(failures: number, random: () => number = Math.random): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const MIME: Record<string, string> = {
  pdf: 'application/pdf', txt: 'text/plain', md: 'text/markdown', csv: 'text/csv', json: 'application/json',
  zip: 'application/zip', png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif',
  mp3: 'audio/mpeg', ogg: 'audio/ogg', mp4: 'video/mp4', html: 'text/html',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

function mimeOf(name: string): string {
  return MIME[path.extname(name).slice(1).toLowerCase()] ?? 'application/octet-stream';
}

/** Baileys' logger, quietened: its warnings and errors reach hako's log at debug level, as text only (its objects may carry keys). */
function baileysLogger(log: Logger): NonNullable<UserFacingSocketConfig['logger']> {
  const quiet = () => {};
  const pass = (obj: unknown, msg?: string) => log.debug(`whatsapp: baileys: ${msg ?? (typeof obj === 'string' ? obj : 'message')}`);
  const logger: NonNullable<UserFacingSocketConfig['logger']> = { level: 'warn', child: () => logger, trace: quiet, debug: quiet, info: quiet, warn: pass, error: pass };
  return logger;
}

/** The channel with the real Baileys, its auth state in HAKO_HOME/channels/whatsapp/auth (register.ts calls this when WHATSAPP_WEB=on). */
export async function createWhatsAppWeb(deps: ChannelDeps): Promise<Channel> {
  const config = webConfig(deps.env, deps.home);
  const baileys = await import('baileys');
  const { state, saveCreds } = await loadAuthState(config.authDir, baileys.useMultiFileAuthState);
  const logger = baileysLogger(deps.log);
  let current: ReturnType<typeof baileys.makeWASocket> | undefined;
  const connect: SocketFactory = () => {
    current = baileys.makeWASocket({
      auth: state, logger, browser: baileys.Browsers.ubuntu('hako'),
      // The phone stays the place that notifies the owner; history beyond the mark is not taken anyway.
      markOnlineOnConnect: false, syncFullHistory: false,
    });
    return current;
  };
  const download: MediaDownload = async (msg, maxBytes) => {
    const stream = await baileys.downloadMediaMessage(msg, 'stream', {}, {
      logger, reuploadRequest: (m) => (current ? current.updateMediaMessage(m) : Promise.reject(new Error('not connected'))),
    });
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) {
        stream.destroy();
        throw new TooBig(`over the ${maxBytes} bytes limit (HAKO_ATTACHMENT_MAX_BYTES)`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  };
  return new WhatsAppWebChannel({ config, connect, download, saveCreds, home: deps.home, log: deps.log, terminal: process.stdout });
}

/** The QR code drawn with Unicode half blocks (qrcode-terminal, imported only when pairing); never rejects. */
async function renderQr(text: string): Promise<string> {
  try {
    const { default: qrcode } = await import('qrcode-terminal');
    return await new Promise<string>((resolve) => qrcode.generate(text, { small: true }, resolve));
  } catch {
    return '(the QR code could not be drawn here)';
  }
}
