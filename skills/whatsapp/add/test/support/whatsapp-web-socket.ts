// A stand-in for a Baileys socket that plays recorded event sequences (Baileys 7's own
// event shapes, built from its proto types in whatsapp-web-recordings/) and records what
// the channel sends. Like the real socket it drops its listeners after a close, and a new
// socket is made for every connection. Also: a context over hako's real router (trigger
// rules, (chat, ref) deduplication, unknown chats) with an in-memory store.

import { EventEmitter } from 'node:events';
import { Boom } from '@hapi/boom';
import { proto, type AnyMessageContent, type BaileysEventMap, type Contact, type MiscMessageGenerationOptions, type WAMessage, type WAPresence } from 'baileys';
import type { ChannelContext, ChatInbound, ReceiveResult } from '../../src/core/channel.ts';
import { createRouter } from '../../src/core/router.ts';
import type { Group, StoredMessage } from '../../src/core/store-contract.ts';
import type { WaSocket } from '../../src/channels/whatsapp/web/socket.ts';

/** One step of a recording: an event as Baileys emits it. */
export type Step = { [E in keyof BaileysEventMap]: { readonly event: E; readonly data: BaileysEventMap[E] } }[keyof BaileysEventMap];

export const ME: Contact = { id: '4915100000001:7@s.whatsapp.net', lid: '177700000001:7@lid', name: 'Hako Owner' };

export interface SentMessage {
  readonly jid: string;
  readonly content: AnyMessageContent;
  readonly quoted?: string;
}

export class RecordingSocket implements WaSocket {
  readonly #ev = new EventEmitter();
  readonly ev = {
    on: <T extends keyof BaileysEventMap>(event: T, listener: (arg: BaileysEventMap[T]) => void): void => {
      this.#ev.on(event, listener);
    },
  };
  user: Contact | undefined;
  authState = { creds: { registered: true } };
  readonly sent: SentMessage[] = [];
  readonly presences: { type: WAPresence; jid?: string }[] = [];
  readonly pairingRequests: string[] = [];
  ended = false;
  #refuse = 0;
  #n = 0;

  constructor(user: Contact | undefined) {
    this.user = user;
  }

  /** Emits the steps in order, as Baileys would; a close drops every listener, like Baileys' end(). */
  play(steps: readonly Step[]): void {
    for (const s of steps) {
      this.#ev.emit(s.event, s.data);
      if (s.event === 'connection.update' && s.data.connection === 'close') this.#ev.removeAllListeners();
    }
  }

  refuseNext(): void {
    this.#refuse++;
  }

  async sendMessage(jid: string, content: AnyMessageContent, options?: MiscMessageGenerationOptions): Promise<WAMessage | undefined> {
    if (this.#refuse > 0) {
      this.#refuse--;
      // What Baileys throws when the server answers an error to the relay.
      throw new Boom('bad-request', { statusCode: 400, data: { tag: 'error' } });
    }
    this.sent.push({ jid, content, ...(options?.quoted?.key.id ? { quoted: options.quoted.key.id } : {}) });
    return proto.WebMessageInfo.fromObject({ key: { remoteJid: jid, fromMe: true, id: `3EB0SENT${++this.#n}` }, messageTimestamp: 1764500000 + this.#n }) as WAMessage;
  }

  async sendPresenceUpdate(type: WAPresence, toJid?: string): Promise<void> {
    this.presences.push({ type, ...(toJid ? { jid: toJid } : {}) });
  }

  async requestPairingCode(phone: string): Promise<string> {
    this.pairingRequests.push(phone);
    return 'HAKO1234';
  }

  end(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.play([{ event: 'connection.update', data: { connection: 'close', lastDisconnect: { error, date: new Date() } } }]);
  }
}

/** The factory the channel connects through: one new socket per connection. */
export class RecordingLink {
  readonly sockets: RecordingSocket[] = [];
  #user: Contact | undefined;
  #onConnect: ((s: RecordingSocket) => void) | undefined;
  #waiting: { n: number; resolve: (s: RecordingSocket) => void }[] = [];
  /** Sockets whose opening sequence was played. */
  #ready = 0;

  constructor(opts: { user?: Contact | undefined; onConnect?: (s: RecordingSocket) => void } = {}) {
    this.#user = 'user' in opts ? opts.user : ME;
    this.#onConnect = opts.onConnect;
  }

  readonly connect = (): RecordingSocket => {
    const s = new RecordingSocket(this.#user);
    this.sockets.push(s);
    const n = this.sockets.length;
    // Baileys emits its first events after the caller attached its listeners.
    queueMicrotask(() => {
      this.#onConnect?.(s);
      this.#ready = Math.max(this.#ready, n);
      for (const w of this.#waiting.filter((x) => x.n === n)) w.resolve(s);
    });
    return s;
  };

  /** Resolves with the n-th socket (1-based) once the channel made it and its opening sequence was played. */
  made(n: number): Promise<RecordingSocket> {
    if (this.#ready >= n) return Promise.resolve(this.sockets[n - 1]!);
    return new Promise((resolve) => this.#waiting.push({ n, resolve }));
  }

  get current(): RecordingSocket {
    return this.sockets.at(-1)!;
  }

  /** Texts sent to `jid`, in order (the caption for a file). */
  texts(jid: string): string[] {
    return this.sockets.flatMap((s) => s.sent).filter((m) => m.jid === jid).map((m) => {
      const c = m.content as { text?: string; caption?: string };
      return c.text ?? c.caption ?? '';
    });
  }
}

/** A group of the in-memory store. */
export function group(name: string, chats: readonly string[], over: Partial<Group> = {}): Group {
  return {
    name, isMain: false, trigger: '@Andy', model: null, allowedSenders: null, limits: {}, tokensPerDay: null,
    contextTokens: null, mounts: [], chats, createdAt: '2026-11-30T00:00:00.000Z', ...over,
  };
}

export interface RouterContext extends ChannelContext {
  readonly stored: StoredMessage[];
  readonly unknown: ChatInbound[];
  readonly enqueued: string[];
  /** What `receive` answered, in order. */
  readonly results: ReceiveResult[];
}

/** A context over hako's real router, with the groups given and an in-memory message store. */
export function routerContext(groups: readonly Group[]): RouterContext {
  const stored: StoredMessage[] = [];
  const unknown: ChatInbound[] = [];
  const enqueued: string[] = [];
  const results: ReceiveResult[] = [];
  const noted = new Set<string>();
  const byName = new Map(groups.map((g) => [g.name, g]));
  const router = createRouter({
    store: {
      getGroup: (n) => byName.get(n),
      mainGroup: () => undefined,
      groupForChat: (chat) => groups.find((g) => g.chats.includes(chat))?.name,
      noteUnknownChat: (chat) => (noted.has(chat) ? false : (noted.add(chat), true)),
      addUserMessage: (m) => {
        const msg = { id: `m${stored.length + 1}`, role: 'user', createdAt: new Date().toISOString(), ...m } as unknown as StoredMessage;
        stored.push(msg);
        return msg;
      },
      messageByRef: (chat, ref) => stored.find((s) => (s as unknown as { chat?: string }).chat === chat && (s as unknown as { ref?: string }).ref === ref),
    },
    assistantName: 'Andy', maxChars: 100_000,
    onStored: () => {}, enqueue: (g) => enqueued.push(g), modelProblem: () => null, unknownChat: (m) => unknown.push(m),
  });
  return {
    stored, unknown, enqueued, results,
    accept: router.accept,
    receive: async (m): Promise<ReceiveResult> => {
      const r = await router.receive(m);
      results.push(r);
      return r;
    },
    groupFor: (chat) => groups.find((g) => g.chats.includes(chat))?.name,
    listMessages: () => [],
    subscribe: () => () => {},
    watchTurns: () => () => {},
    refused: () => {},
    getGroup: (n) => byName.get(n),
    listGroups: () => [...groups],
  };
}
