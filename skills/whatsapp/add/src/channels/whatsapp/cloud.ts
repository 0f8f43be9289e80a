// The WhatsApp Cloud API channel: the webhook at /whatsapp/webhook on hako's webhook
// listener (verification handshake; X-Hub-Signature-256 and the message's age checked
// before anything is stored), the Graph API for replies, files, the read mark with the
// typing indicator and media downloads. States: new → running → stopped, or running →
// refused when Graph refuses the token (one clear line in the log and in `hako status`;
// sends then fail fast with the same line, while signed messages are still stored).

import type { Channel, ChannelContext, Outbound, WebhookReply, WebhookRequest } from '../../core/channel.ts';
import { InputError } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { removeSaved, saveAttachment, type SavedAttachment } from '../attachments.ts';
import type { CloudConfig } from './config.ts';
import { classify, Graph, TooBig, TOKEN_REFUSED } from './graph.ts';
import { ageProblem, parsePayload, signatureValid, toInbound, verification, type CloudMessage } from './inbound.ts';
import { mask, Outbox, parseAddress } from './outbox.ts';
import { Typers } from '../typing.ts';

/** The Cloud API dismisses the typing indicator after 25 s: it is shown again before that. */
const TYPING_EVERY_MS = 20_000;
/** Chats whose last message id is kept for the typing indicator. */
const LAST_MEMORY = 1000;

type State =
  | { readonly kind: 'new' }
  | { readonly kind: 'running'; readonly ctx: ChannelContext }
  | { readonly kind: 'refused'; readonly ctx: ChannelContext }
  | { readonly kind: 'stopped' };

export interface CloudChannelOptions {
  readonly config: CloudConfig;
  readonly home: string;
  readonly log: Logger;
  /** The clock in Unix seconds (tests move it to make a request old). */
  readonly now?: () => number;
  readonly rateWaitsMs?: readonly number[];
}

/** A message's file lines, and what of it was saved in which group (to remove it again). */
interface Files { readonly lines: string[]; readonly group: string | undefined; readonly saved: SavedAttachment[] }

/** No file saved: only `line`, when there is one. */
const noFiles = (line?: string): Files => ({ lines: line ? [line] : [], group: undefined, saved: [] });

export class CloudChannel implements Channel {
  readonly name = 'whatsapp';
  #o: CloudChannelOptions;
  #state: State = { kind: 'new' };
  #abort = new AbortController();
  #graph: Graph;
  #outbox: Outbox;
  /** Chat address → the id of its last message, which the read mark and typing indicator name. */
  #last = new Map<string, string>();
  /** Ids of messages stored (or found stored) lately: Meta's second delivery of one fetches no file again. */
  readonly #stored = new Set<string>();
  #typers = new Typers();

  constructor(o: CloudChannelOptions) {
    this.#o = o;
    this.#graph = new Graph({ graphUrl: o.config.graphUrl, token: o.config.accessToken, signal: this.#abort.signal });
    this.#outbox = new Outbox({
      graph: this.#graph, phoneNumberId: o.config.phoneNumberId, log: o.log, signal: this.#abort.signal,
      onRefused: () => this.#refused(), ...(o.rateWaitsMs ? { rateWaitsMs: o.rateWaitsMs } : {}),
    });
  }

  async start(ctx: ChannelContext): Promise<void> {
    if (this.#state.kind !== 'new') throw new Error(`whatsapp: the channel cannot start again (it is ${this.#state.kind})`);
    this.#state = { kind: 'running', ctx };
    const { config, log } = this.#o;
    try {
      const me = await this.#graph.call('GET', `/${config.phoneNumberId}?fields=display_phone_number,verified_name`);
      log.info('whatsapp: Cloud API ready; messages arrive at /whatsapp/webhook', { number: String(me.display_phone_number ?? ''), name: String(me.verified_name ?? '') });
    } catch (err) {
      const f = classify(err);
      if (f.kind === 'unauthorized') {
        this.#refused();
        throw new Error(TOKEN_REFUSED);
      }
      // Not reachable yet (no network at boot): the webhook takes messages meanwhile.
      log.warn('whatsapp: the Graph API does not answer yet; messages are still taken', { graphUrl: config.graphUrl, reason: f.text });
    }
  }

  async send(m: Outbound): Promise<void> {
    this.#usable();
    await this.#outbox.send(m);
  }

  typing(address: string): () => void {
    const to = parseAddress(address);
    const messageId = to ? this.#last.get(to) : undefined;
    if (!messageId || this.#state.kind !== 'running') return () => {};
    const tick = (stop: () => void) => {
      if (this.#state.kind !== 'running') return stop();
      this.#graph.call('POST', `/${this.#o.config.phoneNumberId}/messages`, {
        messaging_product: 'whatsapp', status: 'read', message_id: messageId, typing_indicator: { type: 'text' },
      }).catch((err: unknown) => {
        const f = classify(err);
        if (f.kind === 'unauthorized') this.#refused();
        else this.#o.log.debug('whatsapp: the read mark and typing indicator failed', { to: mask(to!), reason: f.text });
      });
    };
    return this.#typers.start(tick, TYPING_EVERY_MS);
  }

  async webhook(req: WebhookRequest): Promise<WebhookReply> {
    const s = this.#state;
    if (s.kind !== 'running' && s.kind !== 'refused') return { status: 503, body: 'not running\n', contentType: 'text/plain' };
    if (req.path !== '/webhook') return { status: 404, body: 'not found\n', contentType: 'text/plain' };
    if (req.method === 'GET') return verification(req.query, this.#o.config.verifyToken);
    if (req.method !== 'POST') return { status: 405, body: 'method not allowed\n', contentType: 'text/plain' };
    if (!signatureValid(req.body, req.headers['x-hub-signature-256'], this.#o.config.appSecret)) {
      return { status: 401, refused: req.headers['x-hub-signature-256'] ? 'bad signature' : 'no X-Hub-Signature-256 header' };
    }
    let parsed;
    try {
      parsed = parsePayload(req.body, this.#o.config.phoneNumberId);
    } catch (err) {
      return { status: 400, body: 'not a WhatsApp notification\n', contentType: 'text/plain', refused: `malformed body: ${(err as Error).message.slice(0, 100)}` };
    }
    const now = (this.#o.now ?? (() => Date.now() / 1000))();
    const old = parsed.messages.map((m) => ageProblem(m, now)).find(Boolean);
    if (old) return { status: 401, refused: `replay: ${old}` };
    for (const m of parsed.messages) {
      const ok = await this.#intake(s.ctx, m);
      // 500: Meta delivers the request again later; the messages stored meanwhile are kept once (their ref).
      if (!ok) return { status: 500, body: 'not stored; send again\n', contentType: 'text/plain' };
    }
    return { status: 200, body: 'ok\n', contentType: 'text/plain' };
  }

  problem(): string | undefined {
    return this.#state.kind === 'refused' ? TOKEN_REFUSED : undefined;
  }

  async stop(): Promise<void> {
    if (this.#state.kind === 'stopped') return;
    this.#state = { kind: 'stopped' };
    this.#typers.stopAll();
    this.#abort.abort();
  }

  /** Contract: resolves true when the message is done with (stored, unbound, or refused for good), false to have Meta send it again; never rejects. */
  async #intake(ctx: ChannelContext, m: CloudMessage): Promise<boolean> {
    const { log } = this.#o;
    const inbound = toInbound(m, this.#o.config.owners, '');
    // A message already stored is only acknowledged again: its file is not fetched a second time.
    const files = this.#stored.has(m.id) ? noFiles() : await this.#files(ctx, m, inbound.senderId, inbound.trusted);
    const text = [m.text, ...files.lines].filter((l) => l.trim() !== '').join('\n');
    const unsave = () => { if (files.group) removeSaved(this.#o.home, files.group, files.saved); };
    try {
      const r = await ctx.receive({ ...inbound, text: text || '[an empty message]' });
      if (r.kind === 'stored') this.#rememberStored(m.id);
      // A repeated message id stores nothing new, files included.
      if (r.kind === 'stored' && r.duplicate) unsave();
      if (r.kind === 'stored' && !r.duplicate) this.#remember(m.from, m.id);
      log.debug('whatsapp: message in', { from: mask(m.from), kind: r.kind, ...(r.kind === 'stored' ? { engaged: r.engaged, duplicate: r.duplicate === true } : {}) });
      return true;
    } catch (err) {
      unsave();
      const reason = err instanceof Error ? err.message : String(err);
      if (err instanceof InputError && err.status !== 507) {
        log.warn('whatsapp: a message was refused and is dropped', { from: mask(m.from), reason });
        return true;
      }
      log.warn('whatsapp: a message could not be stored; Meta will deliver it again', { from: mask(m.from), reason });
      return false;
    }
  }

  /**
   * A file is fetched only for a bound chat whose sender may engage it, so a stranger's file is
   * never downloaded. Returns the message's file lines and what was saved, in which group.
   */
  async #files(ctx: ChannelContext, m: CloudMessage, senderId: string, trusted: boolean): Promise<Files> {
    if (!m.media) return noFiles();
    const kind = m.media.kind;
    const group = ctx.groupFor(`whatsapp:${m.from}`);
    if (!group) return noFiles(`[${kind}: not saved]`);
    const allow = ctx.getGroup(group)?.allowedSenders;
    if (allow ? !allow.includes(senderId) : !trusted) return noFiles(`[${kind}: not saved: the sender may not engage this group]`);
    try {
      const { data, mime } = await this.#graph.media(m.media.id, this.#o.config.maxBytes);
      const saved = saveAttachment(this.#o.home, group, m.media.name, data, this.#o.config.maxBytes);
      this.#o.log.info('whatsapp: attachment saved', { group, kind, bytes: saved.bytes });
      return { lines: [`[${kind}: ${saved.agentPath} (${mime})]`], group, saved: [saved] };
    } catch (err) {
      const f = classify(err);
      if (f.kind === 'unauthorized') this.#refused();
      const reason = err instanceof TooBig ? err.message : f.text;
      if (!(err instanceof TooBig)) this.#o.log.warn('whatsapp: an attachment was not saved', { group, kind, reason });
      return noFiles(`[${kind}${kind === 'document' ? ` "${m.media.name}"` : ''}: not saved: ${reason}]`);
    }
  }

  #rememberStored(id: string): void {
    this.#stored.add(id);
    if (this.#stored.size > LAST_MEMORY) this.#stored.delete(this.#stored.values().next().value!);
  }

  #remember(from: string, id: string): void {
    this.#last.delete(from);
    this.#last.set(from, id);
    if (this.#last.size > LAST_MEMORY) this.#last.delete(this.#last.keys().next().value!);
  }

  #usable(): void {
    const s = this.#state;
    if (s.kind === 'refused') throw new Error(TOKEN_REFUSED);
    if (s.kind !== 'running') throw new Error(`whatsapp: the channel is ${s.kind === 'new' ? 'not started' : 'stopped'}`);
  }

  #refused(): void {
    const s = this.#state;
    if (s.kind !== 'running') return;
    this.#o.log.error(TOKEN_REFUSED);
    this.#state = { kind: 'refused', ctx: s.ctx };
    this.#typers.stopAll();
  }
}
