// The LINE channel: the SDK's Messaging API and content clients (given by register.ts,
// which imports the SDK lazily) behind the webhook (`POST /line/webhook` on hako's webhook
// listener), the outbox and the loading animation. States: new → running → stopped, or
// running → refused when LINE refuses the access token (one clear line in the log and in
// `hako status`; sends then fail fast with it).
// Invariants: a webhook's signature holds before its body is read; an event outside the
// age window or already taken is never stored again; a reply token lives only in memory,
// is used at most once and only within REPLY_WINDOW_MS of its event.

import type { messagingApi } from '@line/bot-sdk';
import { InputError, type Channel, type ChannelContext, type Outbound, type WebhookReply, type WebhookRequest } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { attachmentLine, removeSaved, saveAttachment, type SavedAttachment } from '../attachments.ts';
import type { LineConfig } from './config.ts';
import { classify, TOKEN_REFUSED } from './errors.ts';
import { fetchContent, TooBig } from './files.ts';
import { ageProblem, mapMessage, parseBody, signatureHolds, type LineEvent, type Mapped, type Verify } from './inbound.ts';
import { Outbox } from './outbox.ts';
import { Typers } from '../typing.ts';

/** LINE takes a reply token for about a minute after the event; hako uses it for 50 s and pushes after that. */
export const REPLY_WINDOW_MS = 50_000;
/** The loading animation lasts at most 60 s; it is started again before it ends, and ends by itself when a message arrives. */
const LOADING_SECONDS = 60;
const LOADING_EVERY_MS = 50_000;
const PROFILE_TTL_MS = 60 * 60 * 1000;
const REMEMBER = 1000;

type State =
  | { readonly kind: 'new' }
  | { readonly kind: 'running'; readonly ctx: ChannelContext }
  /** Webhooks are still taken and stored (they are signed with the secret, not the token); nothing can be sent. */
  | { readonly kind: 'refused'; readonly ctx?: ChannelContext }
  | { readonly kind: 'stopped' };

/** What became of one event. `retry`: not stored for a passing reason, LINE should deliver it again. */
type Taken = 'stored' | 'duplicate' | 'ignored' | 'retry';

export interface LineChannelOptions {
  readonly config: LineConfig;
  readonly api: messagingApi.MessagingApiClient;
  readonly blob: messagingApi.MessagingApiBlobClient;
  readonly validateSignature: Verify;
  readonly home: string;
  readonly log: Logger;
  /** The clock (tests). */
  readonly now?: () => number;
  /** Milliseconds before attempt `n` after a 429 (tests). */
  readonly backoff?: (n: number) => number;
}

export class LineChannel implements Channel {
  readonly name = 'line';
  #o: LineChannelOptions;
  #state: State = { kind: 'new' };
  #abort = new AbortController();
  #outbox: Outbox;
  #now: () => number;
  /** Event id → its reply token and when the window opened; taken once. */
  #replyTokens = new Map<string, { token: string; at: number }>();
  /** Event ids taken by this process, to refuse a replay before fetching anything. */
  #seen = new Set<string>();
  #names = new Map<string, { name: string; at: number }>();
  #typers = new Typers();

  constructor(o: LineChannelOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#outbox = new Outbox({
      api: o.api, log: o.log, signal: this.#abort.signal, onRefused: () => this.#refused(),
      takeReplyToken: (ref) => this.#takeReplyToken(ref), ...(o.backoff ? { backoff: o.backoff } : {}),
    });
  }

  async start(ctx: ChannelContext): Promise<void> {
    if (this.#state.kind !== 'new') throw new Error(`line: the channel cannot start again (it is ${this.#state.kind})`);
    try {
      const info = await this.#o.api.getBotInfo();
      this.#o.log.info('line: taking webhooks at /line/webhook', { bot: info.displayName, basicId: info.basicId });
    } catch (err) {
      const f = classify(err);
      if (f.kind === 'unauthorized') {
        // One line, no crash loop: webhooks are still stored, sends fail with this line, `hako status` shows it.
        this.#state = { kind: 'refused', ctx };
        this.#o.log.error(TOKEN_REFUSED);
        return;
      }
      // Not reachable yet (no network at boot): webhooks are still taken and stored.
      this.#o.log.warn('line: the Messaging API does not answer yet; webhooks are taken anyway', { apiRoot: this.#o.config.apiRoot, reason: f.text });
    }
    this.#state = { kind: 'running', ctx };
  }

  async webhook(req: WebhookRequest): Promise<WebhookReply> {
    const s = this.#state;
    const ctx = s.kind === 'running' || s.kind === 'refused' ? s.ctx : undefined;
    if (!ctx) return { status: 503, body: `line channel is ${s.kind}\n` };
    if (req.path !== '/webhook') return { status: 404, body: 'the LINE webhook is /line/webhook\n' };
    if (req.method !== 'POST') return { status: 405, body: 'POST only\n' };
    const signature = req.headers['x-line-signature'];
    if (!signatureHolds(this.#o.validateSignature, req.body, this.#o.config.secret, signature)) {
      return { status: 401, body: 'bad signature\n', refused: signature ? 'bad signature' : 'no signature' };
    }
    const parsed = parseBody(req.body);
    if ('error' in parsed) return { status: 400, body: `${parsed.error}\n` };
    // LINE's "Verify" button posts no events: it only wants a 200.
    if (parsed.events.length === 0) return { status: 200, body: '{}', contentType: 'application/json' };
    const now = this.#now();
    const outcomes: { event: LineEvent; taken: Taken | string }[] = [];
    for (const event of parsed.events) {
      const old = ageProblem(event, now);
      outcomes.push({ event, taken: old ?? await this.#take(ctx, event, now) });
    }
    return this.#answer(ctx, outcomes);
  }

  /** 500 when an event should come again; 401 when every event was a replay; else 200 (single replays audited). */
  #answer(ctx: ChannelContext, outcomes: { event: LineEvent; taken: Taken | string }[]): WebhookReply {
    if (outcomes.some((o) => o.taken === 'retry')) return { status: 500, body: 'not stored; deliver again\n' };
    const replays = outcomes.filter((o) => o.taken !== 'stored' && o.taken !== 'ignored')
      .map((o) => ({ id: o.event.webhookEventId, reason: o.taken === 'duplicate' ? 'replay: event already received' : `replay: ${o.taken}` }));
    if (replays.length === outcomes.length) return { status: 401, body: 'refused\n', refused: replays[0]!.reason };
    for (const r of replays) ctx.refused('line', r.reason, { event: r.id });
    return { status: 200, body: '{}', contentType: 'application/json' };
  }

  async #take(ctx: ChannelContext, e: LineEvent, now: number): Promise<Taken> {
    if (this.#seen.has(e.webhookEventId)) return e.redelivery ? 'ignored' : 'duplicate';
    const m = mapMessage(e);
    if (!m) return 'ignored';
    const group = ctx.groupFor(m.chat);
    const sender = await this.#name(e, m);
    const trusted = this.#o.config.owners.has(m.senderId);
    const file = await this.#file(ctx, m, group, trusted);
    const text = [m.text, m.note, file.line].filter((x) => x).join('\n');
    if (!text.trim()) return 'ignored';
    try {
      const r = await ctx.receive({
        chat: m.chat, ...(e.source.type === 'user' ? { chatTitle: sender } : {}), sender, senderId: m.senderId,
        trusted, text, direct: m.direct, ref: e.webhookEventId,
      });
      this.#remember(this.#seen, e.webhookEventId);
      if (r.kind === 'stored' && r.duplicate) {
        if (group) removeSaved(this.#o.home, group, file.saved);
        return e.redelivery ? 'ignored' : 'duplicate';
      }
      if (r.kind === 'stored' && e.replyToken) this.#keepReplyToken(e, now);
      this.#o.log.debug('line: message in', { chat: m.chat, kind: r.kind, ...(r.kind === 'stored' ? { engaged: r.engaged } : {}) });
      return 'stored';
    } catch (err) {
      if (group) removeSaved(this.#o.home, group, file.saved);
      const reason = err instanceof Error ? err.message : String(err);
      if (err instanceof InputError && err.status !== 507) {
        this.#o.log.warn('line: a message was refused and is dropped', { chat: m.chat, reason });
        return 'ignored';
      }
      this.#o.log.warn('line: a message could not be stored; LINE is asked to deliver it again', { chat: m.chat, reason });
      return 'retry';
    }
  }

  /** The file of a message saved to the group's inbox — only for a bound chat and a sender who may engage it. */
  async #file(ctx: ChannelContext, m: Mapped, group: string | undefined, trusted: boolean): Promise<{ line?: string; saved: SavedAttachment[] }> {
    const f = m.file;
    if (!f) return { saved: [] };
    const label = f.kind === 'file' ? `file "${f.name}"` : f.kind;
    if (!group) return { line: `[${label}: not saved]`, saved: [] };
    const allow = ctx.getGroup(group)?.allowedSenders;
    if (allow ? !allow.includes(m.senderId) : !trusted) return { line: `[${label}: not saved: the sender may not engage this group]`, saved: [] };
    try {
      const got = await fetchContent({ blob: this.#o.blob, messageId: f.messageId, maxBytes: this.#o.config.maxBytes, ...(f.size !== undefined ? { knownSize: f.size } : {}) });
      const saved = saveAttachment(this.#o.home, group, f.name, got.data, this.#o.config.maxBytes);
      this.#o.log.info('line: attachment saved', { group, kind: f.kind, bytes: saved.bytes });
      return { line: attachmentLine(saved, got.mime ?? f.mime), saved: [saved] };
    } catch (err) {
      const reason = err instanceof TooBig ? err.message : classify(err).text;
      if (!(err instanceof TooBig)) this.#o.log.warn('line: an attachment was not saved', { group, kind: f.kind, reason });
      if (classify(err).kind === 'unauthorized') this.#refused();
      return { line: `[${label}: not saved: ${reason}]`, saved: [] };
    }
  }

  /** The sender's display name from LINE's profile API, cached for an hour; "LINE user" when LINE gives none. */
  async #name(e: LineEvent, m: Mapped): Promise<string> {
    const user = m.userId;
    if (!user) return 'LINE user';
    const key = `${e.source.type === 'user' ? '' : e.source.id}/${user}`;
    const cached = this.#names.get(key);
    if (cached && this.#now() - cached.at < PROFILE_TTL_MS) return cached.name;
    try {
      const api = this.#o.api;
      const p = e.source.type === 'group' ? await api.getGroupMemberProfile(e.source.id, user)
        : e.source.type === 'room' ? await api.getRoomMemberProfile(e.source.id, user)
        : await api.getProfile(user);
      const name = p.displayName?.trim() || 'LINE user';
      this.#names.set(key, { name, at: this.#now() });
      if (this.#names.size > REMEMBER) this.#names.delete(this.#names.keys().next().value!);
      return name;
    } catch (err) {
      const f = classify(err);
      if (f.kind === 'unauthorized') this.#refused();
      this.#o.log.debug('line: no profile for a sender', { chat: m.chat, reason: f.text });
      return 'LINE user';
    }
  }

  #keepReplyToken(e: LineEvent, now: number): void {
    // The window opens at the event, not at its arrival: a late delivery has less of it left.
    this.#replyTokens.set(e.webhookEventId, { token: e.replyToken!, at: Math.min(now, e.timestamp) });
    if (this.#replyTokens.size > REMEMBER) this.#replyTokens.delete(this.#replyTokens.keys().next().value!);
  }

  #takeReplyToken(ref: string): string | undefined {
    const t = this.#replyTokens.get(ref);
    if (!t) return undefined;
    this.#replyTokens.delete(ref);
    return this.#now() - t.at < REPLY_WINDOW_MS ? t.token : undefined;
  }

  #remember(set: Set<string>, id: string): void {
    set.add(id);
    if (set.size > REMEMBER * 10) set.delete(set.values().next().value!);
  }

  /**
   * A message; a file the agent attached cannot go out through LINE (a bot sends only
   * images, and only from an https URL hako does not have), so the text says where it is.
   */
  async send(m: Outbound): Promise<void> {
    this.#usable();
    const text = m.file ? `${m.text}\n\n(The file "${m.file.name}" is in the group's workspace: LINE cannot deliver files from hako.)` : m.text;
    await this.#outbox.send(m, text);
  }

  /** The loading animation, in one-to-one chats only (LINE shows none in groups). */
  typing(address: string): () => void {
    if (this.#state.kind !== 'running' || !/^U[0-9a-f]{32}$/.test(address)) return () => {};
    const tick = (stop: () => void) => {
      if (this.#state.kind !== 'running') return stop();
      this.#o.api.showLoadingAnimation({ chatId: address, loadingSeconds: LOADING_SECONDS })
        .catch((err: unknown) => this.#o.log.debug('line: loading animation failed', { chat: address, reason: classify(err).text }));
    };
    return this.#typers.start(tick, LOADING_EVERY_MS);
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

  #usable(): void {
    const s = this.#state;
    if (s.kind === 'refused') throw new Error(TOKEN_REFUSED);
    if (s.kind !== 'running') throw new Error(`line: the channel is ${s.kind === 'new' ? 'not started' : 'stopped'}`);
  }

  #refused(): void {
    const s = this.#state;
    if (s.kind !== 'running') return;
    this.#o.log.error(TOKEN_REFUSED);
    this.#state = { kind: 'refused', ctx: s.ctx };
    this.#typers.stopAll();
    this.#abort.abort();
  }
}
